"""`manage.py sync_schedules [--reset NAME ...]`: put the default schedules in the database."""

from django.core.management.base import BaseCommand, CommandError

from jobs.schedules.sync import CREATED, KEPT_EDITED, sync_schedules, undeclared_defaults


class Command(BaseCommand):
    help = (
        "Create missing default schedules (beat_schedules/defaults.py), update those still equal "
        "to their previous default, keep operators' edits; --reset NAME restores one default."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset",
            action="append",
            default=[],
            metavar="NAME",
            help="Restore this default even if an operator edited it (repeatable).",
        )

    def handle(self, *args, reset: list[str], **options) -> None:
        try:
            outcomes = sync_schedules(reset=reset)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        width = max(len(o.name) for o in outcomes)
        for o in outcomes:
            line = f"{o.outcome:<12} {o.name:<{width}}"
            if o.outcome == CREATED:
                line += f"  {o.changes['task'][1]}: {o.changes['schedule'][1]}"
            elif o.changes:
                verb = "differs in" if o.outcome == KEPT_EDITED else "changed"
                line += f"  ({verb}: {', '.join(sorted(o.changes))})"
            self.stdout.write(line.rstrip())
        for name in undeclared_defaults():
            self.stdout.write(f"{'undeclared':<12} {name:<{width}}  (no longer a default; left as is)")
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        self.stdout.write("sync_schedules: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
