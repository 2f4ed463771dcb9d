#!/usr/bin/env python
"""Stepwise against Label Studio 1.23.2, same run, same machine, both under gunicorn with the same workers and threads.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/label_studio.py [--tasks 20000]

Label Studio runs from its own venv (`bench/.ls-venv`, git-ignored), which the bench creates and fills with
`pip install label-studio==1.23.2` plus our pinned gunicorn the first time (PyPI must be reachable then; later runs
reuse it). DATABASE_URL only says which PostgreSQL server to use: each system gets a scratch database of its own
(`stepwise_bench_vs_sw`, `stepwise_bench_vs_ls`), created, migrated and dropped by the bench.

Setup (not timed): the same `--tasks` solutions of 8 steps (~tasks/8 problems, overlap 1) in both, `--prelabeled`
of them already labeled (Stepwise: rows as a submission writes them; Label Studio: its own import API with the
annotations inline), `--clients` annotators with API tokens. Each server: gunicorn, `--workers` processes x
`--threads` threads, DEBUG off, each system's own defaults otherwise (Stepwise keeps database connections and
prepares statements; Label Studio opens a connection per request, as shipped). Then, alternating the systems so
that the load other users put on a shared machine falls on both alike:

  serial      one client, `--serial-cycles` x (next, submit): p50/p95 latency of each request
  concurrent  `--clients` clients, `--cycles` x (next, submit) each, no pause: cycles per second
  export      every label: Stepwise's PRM800K export (the job a worker runs, to a file) against Label Studio's
              JSON export (`GET /api/projects/<id>/export`, built in the request)

and prints each figure, the server CPU per cycle (gunicorn's processes; PostgreSQL apart, it counts every database
on the server) and the Stepwise / Label Studio ratios, with the load average during each scenario. Exit status 1
when a client saw an unexpected status.
"""
import sys
from pathlib import Path

# Run from the root, so that `bench.*` and the project import as packages.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from bench.common import ROOT, admin_execute, scratch_create, scratch_drop, server_url, with_dbname  # noqa: E402
from bench.label_studio_phases import http_call, ls_import_body, wait_for  # noqa: E402
from bench.measure import cpu_seconds, pct  # noqa: E402
from bench.serving_phases import free_port  # noqa: E402

PHASES = ROOT / "bench" / "label_studio_phases.py"
LS_VERSION = "1.23.2"
LS_VENV = ROOT / "bench" / ".ls-venv"
SW_DB, LS_DB = "stepwise_bench_vs_sw", "stepwise_bench_vs_ls"
WARMUP_CYCLES = 2  # per client, before anything is timed


# --- Label Studio's venv ---------------------------------------------------------------------------------

def ls_python():
    python = LS_VENV / "bin" / "python"
    ready = LS_VENV / f".label-studio-{LS_VERSION}"
    if not ready.exists():
        print(f"installing label-studio=={LS_VERSION} into {LS_VENV} (once; a few minutes) ...", flush=True)
        if not python.exists():
            subprocess.run([_base_python(), "-m", "venv", str(LS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"label-studio=={LS_VERSION}",
                        f"gunicorn=={version('gunicorn')}"], check=True)
        ready.touch()
    return python


def _base_python():
    """The interpreter our venv was made from (a venv inside a venv would see our packages)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3")


def ls_package_dir(python):
    out = subprocess.run([str(python), "-c", "import label_studio, os; print(os.path.dirname(label_studio.__file__))"],
                         check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def ls_env(base, data_dir, package_dir):
    parts = urlsplit(base)
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return dict(env, PYTHONPATH=package_dir, DJANGO_SETTINGS_MODULE="core.settings.label_studio",
                DJANGO_DB="default", POSTGRE_NAME=LS_DB, POSTGRE_USER=parts.username or "postgres",
                POSTGRE_PASSWORD=parts.password or "", POSTGRE_HOST=parts.hostname or "127.0.0.1",
                POSTGRE_PORT=str(parts.port or 5432), DEBUG="false", LOG_LEVEL="WARNING",
                LABEL_STUDIO_BASE_DATA_DIR=data_dir, SENTRY_DSN="", FRONTEND_SENTRY_DSN="",
                ALLOWED_HOSTS="127.0.0.1", COLLECT_ANALYTICS="false", DISABLE_SIGNUP_WITHOUT_LINK="true")


def sw_env(base):
    return dict(os.environ, DATABASE_URL=with_dbname(base, SW_DB), DEBUG="0", SECRET_KEY="bench-only-secret-key",
                DB_CONN_MAX_AGE="600", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1",
                # The per-login throttle stays on (its cost is part of a request) at a rate one client never meets.
                STEPWISE_API_RATE="1000000/minute")


def phase(python, name, env, log=None, **extra):
    cmd = [str(python), str(PHASES), "--phase", name]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gunicorn(python, app, env, args, port, log):
    return subprocess.Popen([str(python), "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
                             "--workers", str(args.workers), "--threads", str(args.threads), "--timeout", "600",
                             "--log-level", "warning"], env=env, cwd=env.get("PYTHONPATH", ROOT),
                            stdout=log, stderr=subprocess.STDOUT)


# --- the run ---------------------------------------------------------------------------------------------

def main(args):
    base = server_url("bench/label_studio.py", SW_DB)
    python = ls_python()
    package_dir = ls_package_dir(python)
    data_dir = tempfile.mkdtemp(prefix="ls-bench-")
    lsenv, swenv = ls_env(base, data_dir, package_dir), sw_env(base)
    servers = []
    results = {}
    try:
        print(f"setup (not timed): {args.tasks:,} tasks, {args.prelabeled:,} labeled, {args.clients} annotators ...",
              flush=True)
        scratch_create(base, SW_DB, swenv)
        sw = phase(sys.executable, "sw_populate", swenv, tasks=args.tasks, prelabeled=args.prelabeled,
                   clients=args.clients)
        admin_execute(base, f'DROP DATABASE IF EXISTS "{LS_DB}" WITH (FORCE)', f'CREATE DATABASE "{LS_DB}"')
        log_dir = Path(data_dir)
        setup_log = open(log_dir / "label_studio_setup.log", "w")  # its warnings (no network: no update check)
        subprocess.run([str(python), os.path.join(package_dir, "manage.py"), "migrate", "--noinput", "-v0"],
                       env=lsenv, check=True, cwd=package_dir, stdout=setup_log, stderr=subprocess.STDOUT)
        ls = phase(python, "ls_setup", lsenv, log=setup_log, clients=args.clients)

        sw_port, ls_port = free_port(), free_port()
        servers.append(("Stepwise", gunicorn(sys.executable, "annotate.wsgi", swenv, args, sw_port,
                                             open(log_dir / "stepwise.log", "w"))))
        servers.append(("Label Studio", gunicorn(python, "core.wsgi:application", lsenv, args, ls_port,
                                                 open(log_dir / "label_studio.log", "w"))))
        if not wait_for(sw_port, "/api/schema/", sw["tokens"][0]):
            sys.exit(f"Stepwise did not come up: see {log_dir / 'stepwise.log'}")
        if not wait_for(ls_port, f"/api/projects/{ls['project']}/", ls["owner_token"]):
            sys.exit(f"Label Studio did not come up: see {log_dir / 'label_studio.log'}")
        t0 = time.perf_counter()
        status, data = http_call(ls_port, "POST", f"/api/projects/{ls['project']}/import", ls["owner_token"],
                                 body=ls_import_body(args.tasks, args.prelabeled))
        if status != 201:
            sys.exit(f"Label Studio's import failed: {status} {data[:300]!r}")
        print(f"  Label Studio imported {json.loads(data).get('task_count')} tasks in "
              f"{time.perf_counter() - t0:.0f} s (its own import API)", flush=True)
        pids = {"Stepwise": servers[0][1].pid, "Label Studio": servers[1][1].pid}
        systems = [("Stepwise", "stepwise", sw_port, sw), ("Label Studio", "labelstudio", ls_port, ls)]
        for name, key, port, setup in systems:  # every worker process and thread past its first request
            run_load(python if key == "labelstudio" else sys.executable, lsenv if key == "labelstudio" else swenv,
                     key, port, setup, args.clients, WARMUP_CYCLES, pids[name])
        for scenario, clients, cycles in (("serial", 1, args.serial_cycles), ("concurrent", args.clients, args.cycles)):
            for name, key, port, setup in systems:
                print(f"{scenario}: {name}, {clients} client(s) x {cycles} cycles ...", flush=True)
                results[scenario, name] = run_load(python if key == "labelstudio" else sys.executable,
                                                   lsenv if key == "labelstudio" else swenv, key, port, setup,
                                                   clients, cycles, pids[name])
        print("export ...", flush=True)
        results["export", "Stepwise"] = measured(lambda: phase(sys.executable, "sw_export", swenv))
        results["export", "Label Studio"] = measured(lambda: ls_export(ls_port, ls))
    finally:
        for _, server in servers:
            server.terminate()
        for _, server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    if not args.keep:
        scratch_drop(base, SW_DB)
        scratch_drop(base, LS_DB)
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"kept databases {SW_DB}, {LS_DB} and {data_dir}")
    return report(args, results)


def run_load(python, env, key, port, setup, clients, cycles, server_pid):
    cpu0, load0 = cpu_seconds(root_pid=server_pid), os.getloadavg()[0]
    r = measured(lambda: phase(python, "load", env, system=key, port=port, setup=json.dumps(setup),
                               clients=clients, cycles=cycles))
    r["cpu_server"] = cpu_seconds(root_pid=server_pid) - cpu0
    r["load"] = (load0 + os.getloadavg()[0]) / 2
    return r


def measured(fn):
    load0 = os.getloadavg()[0]
    r = fn()
    r.setdefault("load", (load0 + os.getloadavg()[0]) / 2)
    return r


def ls_export(port, ls):
    t0 = time.perf_counter()
    status, data = http_call(port, "GET", f"/api/projects/{ls['project']}/export?exportType=JSON", ls["owner_token"])
    seconds = time.perf_counter() - t0
    if status != 200:
        sys.exit(f"Label Studio's export failed: {status} {data[:300]!r}")
    tasks = json.loads(data)
    return {"seconds": seconds, "records": sum(len(t.get("annotations", [])) for t in tasks), "bytes": len(data)}


# --- the report ----------------------------------------------------------------------------------------------

def report(args, results):
    failures = 0
    print()
    print(f"machine: {os.cpu_count()} CPU cores, shared (load average 1/5/15 min now: "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}); gunicorn {version('gunicorn')}, {args.workers} "
          f"workers x {args.threads} threads each; {args.tasks:,} tasks, {args.prelabeled:,} labeled before the run")
    print(f"{'scenario':<12}{'figure':<26}{'Stepwise':>12}{'Label Studio':>14}{'ratio':>8}   load avg (SW / LS)")
    for scenario, clients in (("serial", 1), ("concurrent", args.clients)):
        sw, ls = results[scenario, "Stepwise"], results[scenario, "Label Studio"]
        for r, name in ((sw, "Stepwise"), (ls, "Label Studio")):
            if r["error_count"]:
                failures += 1
                print(f"  {name} {scenario}: {r['error_count']} client errors, e.g. {r['errors'][:2]}")
        rows = []
        if scenario == "serial":
            for op in ("next", "submit"):
                for q in (50, 95):
                    a, b = pct(sw["timings"][op], q), pct(ls["timings"][op], q)
                    rows.append((f"{op} p{q} ms", a, b, b / a))
        else:
            a, b = len(sw["timings"]["submit"]) / sw["seconds"], len(ls["timings"]["submit"]) / ls["seconds"]
            rows.append((f"cycles/s, {clients} clients", a, b, a / b))
        cycles_sw, cycles_ls = len(sw["timings"]["submit"]) or 1, len(ls["timings"]["submit"]) or 1
        a, b = sw["cpu_server"] / cycles_sw * 1000, ls["cpu_server"] / cycles_ls * 1000
        rows.append(("server CPU ms per cycle", a, b, b / a))
        for i, (figure, a, b, ratio) in enumerate(rows):
            loads = f"{sw['load']:.2f} / {ls['load']:.2f}" if i == 0 else ""
            print(f"{scenario if i == 0 else '':<12}{figure:<26}{a:>12.1f}{b:>14.1f}{ratio:>7.1f}x   {loads}")
    sw, ls = results["export", "Stepwise"], results["export", "Label Studio"]
    print(f"{'export':<12}{'seconds, every label':<26}{sw['seconds']:>12.2f}{ls['seconds']:>14.2f}"
          f"{ls['seconds'] / sw['seconds']:>7.1f}x   {sw['load']:.2f} / {ls['load']:.2f}")
    print(f"{'':<12}{'labels exported':<26}{sw['records']:>12,}{ls['records']:>14,}")
    print(f"{'':<12}{'MB written':<26}{sw['bytes'] / 1e6:>12.1f}{ls['bytes'] / 1e6:>14.1f}")
    print("ratio: how many times Stepwise is ahead (latency and CPU: Label Studio / Stepwise; throughput: "
          "Stepwise / Label Studio)")
    if sw["records"] != ls["records"]:
        print(f"WARNING: the exports hold different numbers of labels ({sw['records']} vs {ls['records']})")
    return 1 if failures else 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=20_000, help="tasks loaded into each system (default 20000)")
    ap.add_argument("--prelabeled", type=int, help="tasks labeled before the run (default: half)")
    ap.add_argument("--clients", type=int, default=10, help="concurrent clients (default 10)")
    ap.add_argument("--serial-cycles", type=int, default=100, help="next+submit cycles of the single client")
    ap.add_argument("--cycles", type=int, default=30, help="next+submit cycles per concurrent client")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes, both systems (default 2)")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker, both systems (default 4)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = ap.parse_args(argv)
    if args.prelabeled is None:
        args.prelabeled = args.tasks // 2
    needed = args.serial_cycles + args.clients * (args.cycles + WARMUP_CYCLES)
    if args.tasks - args.prelabeled < needed:
        ap.error(f"{needed} cycles need that many unlabeled tasks: raise --tasks or lower --prelabeled")
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args()))
