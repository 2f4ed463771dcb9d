import threading

from django.core.management.base import BaseCommand, CommandError

from labeling.core.selection import SELECTION_RULES
from labeling.models import Round
from labeling.services.jobs.dispatch import run_here
from labeling.errors import InvalidInput
from labeling.services.rounds.stages import RoundParameters, round_progress, round_start


class Command(BaseCommand):
    help = ("Start an active-learning round: make sure M candidates exist per problem, score them with the "
            "active selector (training the round-0 implicit PRM if there is none), queue K per problem.")

    def add_arguments(self, parser):
        parser.add_argument("--problems", type=int, help="how many problems (default: every eligible one)")
        parser.add_argument("--per-problem", type=int, default=4, help="K solutions selected per problem")
        parser.add_argument("--wrong-fraction", type=float, default=0.8,
                            help="share of the K that are convincing wrong-answer solutions")
        parser.add_argument("--candidates", type=int, help="M candidates per problem; missing ones are generated")
        parser.add_argument("--generator", default="", help="model spec for generation (default: the promoted generator, else STEPWISE_GENERATOR)")
        parser.add_argument("--overlap", type=int, default=1, help="annotators per task")
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--max-new-tokens", type=int, default=512)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--step-delimiter", default="\n\n",
                            help="how generated solutions split into steps (default: a blank line; \\n escapes work)")
        parser.add_argument("--name", default="")
        parser.add_argument("--label-target", type=int,
                            help="retrain the PRM once this many of the round's labels are submitted")
        parser.add_argument("--grading", choices=["fixed", "prm800k"], default="",
                            help="how candidates are graded for selection (default: STEPWISE_SELECTION_GRADING, fixed)")
        parser.add_argument("--control-fraction", type=float, default=0.0,
                            help="share of the round's tasks drawn at random as a control slice (measures the yield)")
        parser.add_argument("--selection-rule", choices=SELECTION_RULES, default="prm800k",
                            help="prm800k (default): convincing wrong answers by selector score; disagreement: first "
                                 "the solutions whose rollouts contradict the selector (a strongly negative process "
                                 "advantage, or another first error; `rollout_labels` first), then prm800k")
        parser.add_argument("--rollout-hints", action="store_true",
                            help="show annotators the rollouts' estimated first error (off by default: it anchors)")
        parser.add_argument("--relabel", action="store_true",
                            help="also select solutions that already have labels, a lease or an open task")
        parser.add_argument("--sync", action="store_true",
                            help="run every stage in this process, even where workers are configured")
        parser.add_argument("--only-first", action="store_true",
                            help="start a round only if there is none; finish one left unfinished (the demo)")

    def handle(self, *args, **opts):
        params = RoundParameters(problems=opts["problems"], per_problem=opts["per_problem"],
                                 wrong_fraction=opts["wrong_fraction"], candidates=opts["candidates"],
                                 generator=opts["generator"], overlap=opts["overlap"],
                                 temperature=opts["temperature"], max_new_tokens=opts["max_new_tokens"],
                                 seed=opts["seed"],
                                 step_delimiter=opts["step_delimiter"].encode().decode("unicode_escape"),
                                 label_target=opts["label_target"], grading=opts["grading"],
                                 control_fraction=opts["control_fraction"], relabel=opts["relabel"],
                                 selection_rule=opts["selection_rule"], rollout_hints=opts["rollout_hints"])
        if opts["only_first"] and Round.objects.exists():
            return self._finish_first(opts)
        try:
            if opts["sync"]:
                with run_here(), _Reporter(self.stdout):
                    round_ = round_start(params=params, name=opts["name"])
            else:
                round_ = round_start(params=params, name=opts["name"])
        except InvalidInput as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc}" if exc.field else str(exc)) from None
        round_.refresh_from_db()
        if round_.status not in (Round.Status.DONE, Round.Status.FAILED):
            self.stdout.write(f"round {round_.number} started ({round_.status}); follow it in the admin "
                              f"or with GET /api/rounds/{round_.number}/")
            return
        self._report(round_)

    def _finish_first(self, opts):
        from labeling.services.jobs.resume import jobs_resume

        round_ = Round.objects.order_by("number").first()
        if round_.status in (Round.Status.DONE, Round.Status.FAILED):
            self.stdout.write(f"round {round_.number} exists ({round_.status}); nothing to start")
            return
        self.stdout.write(f"round {round_.number} was left {round_.status}: finishing it")
        if opts["sync"]:
            with run_here(), _Reporter(self.stdout):
                jobs_resume()
        else:
            jobs_resume()
        round_.refresh_from_db()
        if round_.status in (Round.Status.DONE, Round.Status.FAILED):
            self._report(round_)

    def _report(self, round_):
        if round_.status == Round.Status.FAILED:
            raise CommandError(f"round {round_.number} failed: {round_.error}")
        stats = round_.stats
        self.stdout.write(f"round {round_.number} done: {stats.get('problems')} problems, "
                          f"{stats.get('candidates')} candidates, selected {stats.get('selected')}, "
                          f"{stats.get('tasks_created')} tasks created, {stats.get('tasks_moved')} moved into the "
                          f"round; selector {round_.selector}; seconds {stats.get('seconds')}")
        selector = stats.get("selector") or {}
        if selector.get("fallback"):
            self.stdout.write(f"selector not activated: {selector.get('reason')}; picks are random wrong answers")


class _Reporter(threading.Thread):
    """Prints the newest round's stage and job progress every few seconds while --sync runs."""

    def __init__(self, out, every=3.0):
        super().__init__(daemon=True)
        self.out, self.every, self.stop = out, every, threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(timeout=10)

    def run(self):
        from django.db import connection

        last = None
        try:
            while not self.stop.wait(self.every):
                round_ = Round.objects.order_by("-number").first()
                if round_ is None:
                    continue
                info = round_progress(round_=round_)
                job = info["job"] or {}
                line = (f"round {round_.number}: {info['status']}"
                        + (f" - {job['kind']} {job['done']}/{job['total']} ({job['progress']:.0%})"
                           f"{' - ' + job['message'] if job.get('message') else ''}" if job else ""))
                if line != last:
                    self.out.write(line)
                    last = line
        finally:
            connection.close()
