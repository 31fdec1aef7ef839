"""django-celery-results' admin, at the scale of a week of results (millions of rows): its pages,
fields and read-only rule kept, with estimated counts, indexed search and filters
(jobs/operations/admin_scale.py) instead of count(*), icontains over five columns, DISTINCTs and a date
hierarchy, which each scanned the table. Registered in place of the package's own
(jobs/operations/admin.py)."""

from django.contrib import admin
from django_celery_results import admin as stock
from django_celery_results.models import GroupResult, TaskResult

from jobs.operations.admin_scale import IndexedValuesFieldListFilter, LargeTableAdmin


class TaskResultAdmin(LargeTableAdmin, stock.TaskResultAdmin):
    date_hierarchy = None
    list_filter = (
        ("status", IndexedValuesFieldListFilter),
        ("task_name", IndexedValuesFieldListFilter),
        ("periodic_task_name", IndexedValuesFieldListFilter),
        ("worker", IndexedValuesFieldListFilter),
        "date_done",
    )
    # The unique task_id index; the migration's taskresult_task_name_like_idx (jobs 0003).
    search_exact_fields = ("task_id",)
    search_prefix_fields = ("task_name",)
    # A name prefix is read as the merge of each name's newest rows (jobs 0004's indexes).
    merge_prefix_field = "task_name"
    search_help_text = "A task id (exactly), or the beginning of a task name (tasks.notifications.)."


class GroupResultAdmin(LargeTableAdmin, stock.GroupResultAdmin):
    date_hierarchy = None
    search_exact_fields = ("group_id",)
    search_help_text = "A group id (exactly)."


for model, model_admin in ((TaskResult, TaskResultAdmin), (GroupResult, GroupResultAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
