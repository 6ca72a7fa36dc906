from django.core.management.base import BaseCommand

from communications import demo


class Command(BaseCommand):
    help = "Generate realistic communications of every method, kind and status (demo, benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=300)
        parser.add_argument("--seed", type=int, default=1, help="same seed, same data")

    def handle(self, *args, count: int, seed: int, **options):
        if count < 0:
            self.stderr.write("--count must not be negative")
            raise SystemExit(2)
        created = demo.load(count, seed=seed)
        self.stdout.write(f"Created {created} communications.")
