// A periodic task's admin page (templates/admin/jobs/periodictask/change_form.html): shows the
// chosen crontab in words under the crontab field, as django-celery-beat's inline script does,
// from a static file (the Content-Security-Policy runs no inline script). The words are added
// as text, never as HTML.
(function ($) {
  "use strict";
  var data = document.getElementById("readable-crontabs");
  var readableCrontabs = data ? JSON.parse(data.textContent) : {};
  var help = $(".field-crontab .help");
  var originalHelp = help.html();

  function showTranslation() {
    var readable = readableCrontabs[$("#id_crontab").val()];
    help.html(originalHelp);
    if (readable) help.append("<br>", document.createTextNode("Translation: " + readable));
  }

  $(".field-crontab_translation").hide();
  $(".field-crontab").change(showTranslation);
})(django.jQuery);
