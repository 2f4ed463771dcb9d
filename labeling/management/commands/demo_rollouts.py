import tempfile

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from labeling.services.data.demo import demo_rollout_solutions


class Command(BaseCommand):
    help = ("The rollout demo: estimate step values (Q per prefix, advantages, the first error) of a few demo "
            "solutions with the default prover (SmolLM2 on CPU), through `rollout_labels --sync`, then print where "
            "the admin sees them beside the human labels. Run `load_demo` first (`make demo-rollouts` does).")

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=3, help="demo solutions (default 3; labeled ones first)")
        parser.add_argument("--n", type=int, default=4, help="continuations per prefix (default 4)")
        parser.add_argument("--method", choices=("mc", "binary"), default="mc")
        parser.add_argument("--max-new-tokens", type=int, default=128,
                            help="tokens per continuation (default 128)")
        parser.add_argument("--prover", help="generator spec (default STEPWISE_GENERATOR: SmolLM2)")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the app is served")

    def handle(self, *args, **opts):
        ids = demo_rollout_solutions(opts["count"])
        if not ids:
            raise CommandError("no demo solutions: run `manage.py load_demo` first")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="demo-rollouts-") as listing:
            listing.write("".join(f"{sid}\n" for sid in ids))
            listing.flush()
            args = ["--solutions", listing.name, "--n", str(opts["n"]), "--method", opts["method"],
                    "--max-new-tokens", str(opts["max_new_tokens"]), "--sync"]
            if opts["prover"]:
                args += ["--prover", opts["prover"]]
            call_command("rollout_labels", *args, stdout=self.stdout, stderr=self.stderr)
        self.stdout.write("Q, A and the estimated first error beside the human labels (log in as admin):")
        for sid in ids:
            self.stdout.write(f"  {opts['url'].rstrip('/')}/admin/labeling/solution/{sid}/change/")
