#!/usr/bin/env python3
"""Replays the shell blocks of catlip's docs as written (issue 24).

    replay_docs.py [--soak] [--build DIR] [--keep] [--list] [DOC ...]

Every ```sh, ```bash and ```console block of README.md, docs/cluster.md,
docs/writing-stages.md and examples/*/README.md (or of the DOCs named) is
run, each file's blocks in order in one bash session, in a fresh scratch
directory: a copy of the source tree (git's files) with `build` linked to the
build under test and `.venv` to the project venv, that build's bin/ first on
PATH (so `build/bin/catlip` and `catlip` both resolve) and HOME set to a
directory inside it. Nothing the docs do not set themselves is set: the
launcher variables (CATLIP_*, DATA, VOCAB, SLURM_*, OMPI_*, MASTER_*, ...)
are removed from the environment. Console blocks replay their `$ ` lines; a
`catlip: graph 'X' finished` line in their shown output must appear in the
replayed output too.

The bash script for a file keeps the file's line numbers (line N of the
script is line N of the doc), so an error names the doc line.

Other hosts. A block that needs hosts (names n1 n2 n3, addresses 10.0.0.1-3,
`# on HOST` comments, sbatch/srun, mpirun --host) gets them when this runs as
root: three network namespaces on a private bridge with 10.0.0.1-3
(tests/cluster/netns.sh; no route out, so the subnet cannot clash), n1-n3 in
/etc/hosts (bind-mounted in a private mount namespace), and the whole file
replayed on n1. A line ending in `# on HOST` runs in HOST's namespace, in the
background like another terminal; the block waits for all of them and each
must exit 0. mpirun gets tests/cluster/nsrsh.sh as its rsh agent and the
MCA settings of the cluster tests (OMPI_MCA_* in the environment; root
allowed). sbatch/srun talk to a private 3-node Slurm (tests/cluster/slurm.sh,
nodes n1-n3 on the namespaces) through SLURM_CONF, and sbatch waits for its
job (SBATCH_WAIT=1) so that the job's exit status counts. When namespaces or
Slurm cannot be made (not root, no iproute2 or Slurm), such a block is
SKIPPED, never passed, and the exit code is 77.

The build under test is not changed: as root the replay runs in a private
mount namespace with an overlay on the build directory (what a block writes
there, e.g. `cmake --install`'s manifest, lands in a scratch upper layer).

Two commands are special, by name (COMMANDS below): `bash tools/test.sh` is
never replayed (it runs CTest, which runs this test); `bash tools/quickstart.sh`
as written takes about 10 minutes, so it runs as written only with --soak and
otherwise with small arguments appended (said in the output).

A shell block may not hold placeholders (GRAPH, FILE, <host>, ...): an
all-capitals word that is not a variable ($X, X=..., or a known variable
name) fails the check; a synopsis belongs in a ```text block.

Exit: 0 every block ran and passed, 1 a block failed or the docs hold a
placeholder, 77 nothing failed but a block was skipped, 2 usage.
Environment: CATLIP_BUILD (default <source>/build), CATLIP_KEEP_TEST_DIRS=1
(like --keep: keep the scratch directories), CATLIP_TEST_NO_NETNS=1 (as for
the cluster tests: act as if namespaces could not be made).
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
CLUSTER = os.path.join(SOURCE, "tests", "cluster")

DOC_GLOBS = ["README.md", "docs/cluster.md", "docs/writing-stages.md", "examples/*/README.md"]
SHELL_LANGS = {"sh", "bash", "console"}

# The emulated hosts a doc may name, and their addresses (netns.sh up ... 10.0.0).
SUBNET = "10.0.0"
HOSTS = {"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3"}
ADDRS = {a: k for k, a in enumerate(HOSTS.values())}

# Commands handled by name: (prefix of the command, as written) -> what happens.
NEVER = {
    "bash tools/test.sh": "never replayed: it runs CTest, which runs this test (it would recurse)",
}
SMALL = {
    # ~10 minutes as written (48000 samples, 1500 steps): the soak form only.
    "bash tools/quickstart.sh": ["--train-samples", "600", "--val-samples", "100", "--transfer-steps", "2"],
}

# Variables a block may name without `$` (mpirun -x NAME, export NAME, ...).
KNOWN_VARS = {
    "CATLIP_CLUSTER_SECRET", "CATLIP_CLUSTER_SECRET_FILE", "CATLIP_PLUGIN_PATH", "CATLIP_PREFIX", "DATA",
    "VOCAB", "MASTER_ADDR", "MASTER_PORT", "PATH", "HOME", "PWD", "EOF",
}
# Removed from the replay's environment: a doc must set what it needs.
CLEAN_PREFIXES = ("CATLIP_", "SLURM_", "SBATCH_", "SRUN_", "OMPI_", "PMIX_", "PMI_", "PET_")
CLEAN_VARS = {"DATA", "VOCAB", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "GROUP_RANK", "NNODES",
              "GROUP_WORLD_SIZE", "JOB_COMPLETION_INDEX", "WORLD_SIZE", "RANK", "LOCAL_RANK", "GRAPH", "RUN_DIR"}

FAIL_TAIL = 40


def log(msg=""):
    print(msg, flush=True)


class Cmd:
    """One command of a block: its first doc line, its text (all its lines)."""

    def __init__(self, line, text, host=None):
        self.line, self.text, self.host = line, text, host
        self.mode = "run"  # run | never | small | skip
        self.note = ""
        self.expect_finished = []  # console: graph names whose 'finished' line must show
        self.seconds = None


class Block:
    def __init__(self, doc, lang, start, end, lines):
        self.doc, self.lang, self.start, self.end = doc, lang, start, end
        self.lines = lines  # [(lineno, text)] between the fences
        self.cmds = []
        self.exec_lines = {}  # lineno -> text to put in the script
        self.needs = set()  # hosts, slurm, mpirun
        self.skip = ""
        self.errors = []


def extract(path, rel):
    """Fenced blocks of a Markdown file: [Block], plus errors for untyped transcripts."""
    blocks, errors = [], []
    with open(path, encoding="utf-8") as f:
        text = f.read().split("\n")
    i = 0
    while i < len(text):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", text[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i + 1
        body = []
        i += 1
        while i < len(text) and not text[i].strip().startswith(fence):
            body.append((i + 1, text[i]))
            i += 1
        end = i + 1
        i += 1
        if lang in SHELL_LANGS:
            blocks.append(Block(rel, lang, start, end, body))
        elif lang == "" and any(t.startswith("$ ") for _, t in body):
            errors.append(f"{rel}:{start}: a transcript (`$ ` lines) in an untyped fence: mark it ```console")
    return blocks, errors


def strip_comment(line):
    """The line without its shell comment (a # at a word start, outside quotes)."""
    q = None
    for k, c in enumerate(line):
        if q:
            if c == q:
                q = None
            elif c == "\\" and q == '"':
                continue
        elif c in "'\"":
            q = c
        elif c == "#" and (k == 0 or line[k - 1] in " \t;&|(") and not line[k - 1:k + 1] == "$#":
            return line[:k].rstrip(), line[k:]
    return line.rstrip(), ""


def unquoted(s):
    """s with the contents of quoted strings removed."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", s)


def parse_commands(block):
    """Splits a block into commands; fills block.cmds and block.exec_lines."""
    if block.lang == "console":
        cur = None
        for ln, t in block.lines:
            if t.startswith("$ "):
                cur = Cmd(ln, t[2:])
                block.cmds.append(cur)
            elif cur is not None and t.startswith("> ") and cur.text.endswith("\\"):
                cur.text += "\n" + t[2:]
            elif cur is not None:
                m = re.match(r"^catlip: graph '([^']+)' finished", t)
                if m:
                    cur.expect_finished.append(m.group(1))
        return
    heredoc, cont, cur = None, False, None
    for ln, t in block.lines:
        if heredoc is not None:
            cur.text += "\n" + t
            if t.strip() == heredoc:
                heredoc = None
            continue
        if cont:
            cur.text += "\n" + t
        elif t.strip() == "" or t.lstrip().startswith("#"):
            continue
        else:
            code, comment = strip_comment(t)
            host = None
            m = re.match(r"#\s*on\s+(\S+?)[,.;:]?(\s|$)", comment)
            if m and (m.group(1) in HOSTS or m.group(1) in ADDRS):
                host = HOSTS.get(m.group(1), m.group(1))
            cur = Cmd(ln, t, host)
            block.cmds.append(cur)
        code, _ = strip_comment(t)
        m = re.search(r"<<-?\s*(['\"]?)(\w+)\1", code)
        if m:
            heredoc = m.group(2)
        cont = code.endswith("\\")


def doc_assigned_vars(blocks):
    names = set()
    for b in blocks:
        for c in b.cmds:
            names.update(re.findall(r"(?<![\w$])([A-Za-z_]\w*)=", c.text))
    return names


def check_placeholders(block, known):
    for c in block.cmds:
        first = c.text.split("\n")
        lines = [first[0]]
        # heredoc bodies are data, continuation lines are code
        code0, _ = strip_comment(first[0])
        if not re.search(r"<<-?\s*['\"]?\w+", code0):
            lines = first
        for k, t in enumerate(lines):
            code, _ = strip_comment(t)
            bad = []
            bad += re.findall(r"(?<![<\w])<[A-Za-z][\w .-]*>", code)
            if re.search(r"(?<!\.)\.\.\.(?!\.)", unquoted(code)):
                bad.append("...")
            for m in re.finditer(r"(?<![\w$\{./:-])([A-Z][A-Z0-9_]*)(?![\w=])", unquoted(code)):
                w = m.group(1)
                if w not in known:
                    bad.append(w)
            if bad:
                block.errors.append(
                    f"{block.doc}:{c.line + k}: placeholder {', '.join(sorted(set(bad)))} in a shell block: "
                    f"make the command concrete, or the block ```text (`{t.strip()}`)")


def classify(block, ctx, soak):
    """Sets what each command needs and how it is replayed."""
    for c in block.cmds:
        code = " ".join(strip_comment(t)[0] for t in c.text.split("\n"))
        words = set(re.findall(r"[\w.-]+", code))
        if c.host or words & set(HOSTS) or words & set(ADDRS):
            block.needs.add("hosts")
        if re.search(r"(^|[;&|(\s])(sbatch|srun|squeue|sinfo)\s", code + " "):
            block.needs.update({"hosts", "slurm"})
        if re.search(r"(^|[;&|(\s])mpirun\s", code + " "):
            block.needs.add("mpirun")
        flat = code.strip()
        for name, why in NEVER.items():
            if flat == name or flat.startswith(name + " "):
                c.mode, c.note = "never", why
        for name, args in SMALL.items():
            if flat == name or flat.startswith(name + " "):
                if soak:
                    c.note = "as written (--soak)"
                else:
                    c.mode = "small"
                    c.note = f"with small arguments appended: {' '.join(args)} (as written only with --soak)"
                    if ctx.quickstart_skip:
                        c.mode, c.note = "skip", ctx.quickstart_skip
    if "hosts" in block.needs and ctx.hosts_skip:
        block.skip = ctx.hosts_skip
    elif "slurm" in block.needs and ctx.slurm_skip:
        block.skip = ctx.slurm_skip
    elif "mpirun" in block.needs and not shutil.which("mpirun"):
        block.skip = "no mpirun (openmpi-bin)"


PRELUDE = r"""
set -eE -o pipefail
exec 3>>"$REPLAY_EVENTS"
declare -A __bgline=()
__ev() { printf '%s %s\n' "$(date +%s.%N)" "$*" >&3; }
__own() {  # background jobs not yet attributed belong to the command that started at line $__LINE
  local p
  for p in $(jobs -p); do [ -n "${__bgline[$p]:-}" ] || __bgline[$p]=${__LINE:-0}; done
}
__at() { __own; __LINE=$1; __ev start "$1"; printf '\n@@@ %s\n' "$1"; }
__block() { __ev block "$1"; }
__note() { __ev note "$1"; }
trap '__rc=$?; __ev fail "${__LINE:-0}" "$__rc" "$LINENO"; exit "$__rc"' ERR
__on() {  # __on ADDRESS LINE COMMAND: COMMAND on that host, in the background
  local addr=$1 line=$2 cmd=$3
  __at "$line"
  ( set -o pipefail; nsenter --net="/run/netns/$REPLAY_NS_PREFIX$4" bash -c "$cmd" 2>&1 | sed -u "s/^/[on $addr] /" ) &
  __bgline[$!]=$line
}
__end() {  # end of the block whose fence opened at line $1: wait for its background commands
  local p rc bad=0
  __own
  for p in $(jobs -p); do
    rc=0
    wait "$p" || rc=$?
    if [ "$rc" != 0 ]; then __ev bgfail "${__bgline[$p]:-$1}" "$rc"; bad=1; fi
  done
  __bgline=()
  __ev endblock "$1"
  printf '\n@@@ end %s\n' "$1"
  [ "$bad" = 0 ] || exit 1
}
"""


def build_script(doc_lines, blocks, prelude_path):
    n = len(doc_lines)
    out = [""] * (n + 2)
    out[1] = f"source {shlex.quote(prelude_path)}"
    for b in blocks:
        if b.skip:
            out[b.start] = f"__block {b.start}; __note {shlex.quote('skip ' + str(b.start))}"
            out[b.end] = ":"
            continue
        out[b.start] = f"__block {b.start}"
        for c in b.cmds:
            parts = c.text.split("\n")
            if c.mode == "never":
                out[c.line] = f"__note {shlex.quote('never ' + str(c.line))}"
                continue
            if c.mode == "skip":
                out[c.line] = f"__note {shlex.quote('skipcmd ' + str(c.line))}"
                continue
            first = parts[0]
            if c.mode == "small":
                code, comment = strip_comment(first)
                args = next(a for k, a in SMALL.items() if code.strip().startswith(k))
                first = code + " " + " ".join(args) + ("   " + comment if comment else "")
            if c.host:
                assert len(parts) == 1, f"{b.doc}:{c.line}: a `# on HOST` command must be one line"
                code, _ = strip_comment(first)
                out[c.line] = f"__on {c.host} {c.line} {shlex.quote(code)} {ADDRS[c.host]}"
                continue
            out[c.line] = f"__at {c.line}; {first}"
            for k, t in enumerate(parts[1:], 1):
                out[c.line + k] = t
        out[b.end] = f"__end {b.start}"
    return "\n".join(out[1:]) + "\n"


class Ctx:
    pass


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(CLEAN_PREFIXES) and k not in CLEAN_VARS}
    return env


def copy_tree(dst):
    """The source tree's files (git's view: tracked and untracked-not-ignored) into dst."""
    files = None
    if shutil.which("git"):
        r = subprocess.run(["git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            files = [f for f in r.stdout.decode().split("\0") if f]
    if files is None:
        shutil.copytree(SOURCE, dst, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", "build", "build-*", ".venv", "runs"))
        return
    for f in files:
        s = os.path.join(SOURCE, f)
        if f.split("/")[0] in ("build", ".venv") or not os.path.lexists(s) or os.path.isdir(s):
            continue
        d = os.path.join(dst, f)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(s, d, follow_symlinks=False)


def segment(logtext, line):
    """Output of the command that started at doc line `line` (up to the next marker)."""
    parts = re.split(r"\n@@@ (\S+)\n", "\n" + logtext)
    out = []
    for k in range(1, len(parts) - 1, 2):
        if parts[k] == str(line):
            out.append(parts[k + 1])
    return "\n".join(out)


def tail(text, n=FAIL_TAIL):
    lines = [l for l in text.rstrip("\n").split("\n") if not l.startswith("@@@ ")]
    return "\n".join("    | " + l for l in lines[-n:])


def replay_doc(rel, ctx, args):
    """Replays one file. Returns (failures, skipped blocks, commands run)."""
    path = rel if os.path.isabs(rel) else os.path.join(SOURCE, rel)
    if os.path.isabs(rel):
        rel = os.path.basename(rel)
    blocks, errors = extract(path, rel)
    with open(path, encoding="utf-8") as f:
        doc_lines = f.read().split("\n")
    for b in blocks:
        parse_commands(b)
    known = KNOWN_VARS | doc_assigned_vars(blocks)
    for b in blocks:
        if b.lang != "console":
            check_placeholders(b, known)
        classify(b, ctx, args.soak)
        errors += b.errors
    log(f"== {rel}: {len(blocks)} shell block(s), {sum(len(b.cmds) for b in blocks)} command(s)")
    if errors:
        for e in errors:
            log(f"FAIL {e}")
        return len(errors), 0, 0
    if not blocks:
        return 0, 0, 0
    if args.list:
        for b in blocks:
            how = ("SKIPPED: " + b.skip) if b.skip else ("run " + describe(b))
            log(f"  {rel}:{b.start} ```{b.lang}: {how}")
            for c in b.cmds:
                log(f"    {c.line}: {c.text.splitlines()[0].strip()}"
                    + (f"   [on {c.host}]" if c.host else "") + (f"   [{c.mode}: {c.note}]" if c.note else ""))
        return 0, sum(1 for b in blocks if b.skip), 0

    slug = re.sub(r"[^\w]+", "-", rel).strip("-")
    scratch = os.path.join(ctx.tmp, slug)
    os.makedirs(scratch)
    copy_tree(scratch)
    os.symlink(ctx.build, os.path.join(scratch, "build"))
    venv = os.path.join(SOURCE, ".venv")
    if os.path.exists(venv):
        os.symlink(os.path.realpath(venv), os.path.join(scratch, ".venv"))
    home = os.path.join(scratch, ".home")
    os.makedirs(home)
    aux = os.path.join(ctx.tmp, slug + ".aux")
    os.makedirs(aux)
    events = os.path.join(aux, "events")
    logpath = os.path.join(aux, "log")
    prelude = os.path.join(aux, "prelude.sh")
    with open(prelude, "w") as f:
        f.write(PRELUDE)
    script = os.path.join(aux, "replay.sh")
    with open(script, "w") as f:
        f.write(build_script(doc_lines, blocks, prelude))
    open(events, "w").close()

    env = clean_env()
    env.update(HOME=home, PATH=os.path.join(scratch, "build", "bin") + ":" + env.get("PATH", ""),
               REPLAY_EVENTS=events, PWD=scratch)
    needs = set().union(*(b.needs for b in blocks if not b.skip))
    tag = slurm_dir = None
    cmd = ["bash", script]
    try:
        if "hosts" in needs:
            tag = ("dr%x" % (os.getpid() % 0xFFFF))[:6] + str(ctx.files_done % 10)
            t0 = time.time()
            r = run(["bash", os.path.join(CLUSTER, "netns.sh"), "up", tag, "3", SUBNET])
            if r.returncode != 0:
                log(r.stdout)
                log(f"FAIL {rel}: netns.sh up failed")
                return 1, 0, 0
            env["REPLAY_NS_PREFIX"] = f"cl{tag}-"
            env["NSRSH_NETNS_PREFIX"] = f"cl{tag}-"
            log(f"   hosts: n1 n2 n3 = {', '.join(HOSTS.values())} (network namespaces cl{tag}-0..2, "
                f"{time.time() - t0:.1f} s); the file is replayed on n1")
            cmd = ["nsenter", f"--net=/run/netns/cl{tag}-0"] + cmd
            if "mpirun" in needs:
                # Every emulated host shares /tmp and the host name: Open MPI's
                # session directories get a base of their own, away from any
                # other mpirun on this machine.
                ompi_tmp = os.path.join(aux, "ompi")
                os.makedirs(ompi_tmp)
                env.update(OMPI_MCA_plm_rsh_agent=os.path.join(CLUSTER, "nsrsh.sh"), OMPI_MCA_routed="direct",
                           OMPI_MCA_rtc="^hwloc", OMPI_MCA_orte_tmpdir_base=ompi_tmp,
                           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
                log("   mpirun: rsh agent tests/cluster/nsrsh.sh, routed direct, rtc ^hwloc, session directories "
                    "in the scratch directory, root allowed (OMPI_MCA_* / OMPI_ALLOW_RUN_AS_ROOT*)")
            if "slurm" in needs:
                t0 = time.time()
                slurm_dir = os.path.join(aux, "slurm")
                r = run(["bash", os.path.join(CLUSTER, "slurm.sh"), "up", slurm_dir, "--netns", tag])
                if r.returncode != 0:
                    log(r.stdout)
                    log(f"FAIL {rel}: slurm.sh up failed")
                    return 1, 0, 0
                env.update(SLURM_CONF=os.path.join(slurm_dir, "slurm.conf"), SBATCH_WAIT="1")
                log(f"   slurm: private cluster n1-n3 on the namespaces ({time.time() - t0:.1f} s), "
                    "SLURM_CONF set, sbatch waits for its job (SBATCH_WAIT=1)")
        t0 = time.time()
        with open(logpath, "w") as lf:
            p = subprocess.Popen(cmd, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                                 start_new_session=True)
            try:
                rc = p.wait(timeout=args.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                rc, timed_out = -1, True
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # the block's process group already ended: nothing left to kill
                p.wait()
        total = time.time() - t0
        return report(rel, blocks, events, logpath, scratch, rc, timed_out, total, args)
    finally:
        if slurm_dir:
            run(["bash", os.path.join(CLUSTER, "slurm.sh"), "down", slurm_dir])
        if tag:
            run(["bash", os.path.join(CLUSTER, "netns.sh"), "down", tag])
        ctx.files_done += 1


def describe(b):
    if "slurm" in b.needs:
        return "in netns hosts, with Slurm"
    if "hosts" in b.needs:
        return "in netns hosts" + (", with mpirun" if "mpirun" in b.needs else "")
    if "mpirun" in b.needs:
        return "with mpirun"
    return "in the scratch directory"


def report(rel, blocks, events, logpath, scratch, rc, timed_out, total, args):
    with open(logpath, errors="replace") as f:
        logtext = f.read()
    ev = []
    with open(events) as f:
        for l in f:
            parts = l.split()
            if len(parts) >= 2:
                ev.append((float(parts[0]), parts[1], parts[2:]))
    starts = [(t, int(a[0])) for t, kind, a in ev if kind == "start"]
    # Command durations: to the next start or block end.
    marks = sorted([(t, kind, a) for t, kind, a in ev if kind in ("start", "endblock", "fail", "bgfail")])
    dur = {}
    for k, (t, kind, a) in enumerate(marks):
        if kind == "start":
            nxt = next((m[0] for m in marks[k + 1:]), None)
            if nxt is not None:
                dur[int(a[0])] = dur.get(int(a[0]), 0) + nxt - t
    started = {l for _, l in starts}
    by_line = {c.line: (b, c) for b in blocks for c in b.cmds}
    fails = [(kind, a) for _, kind, a in ev if kind in ("fail", "bgfail")]
    failures = 0
    for b in blocks:
        ended = any(kind == "endblock" and a[0] == str(b.start) for _, kind, a in ev)
        if b.skip:
            log(f"   {rel}:{b.start} ```{b.lang} SKIPPED: {b.skip}")
            continue
        ok = ended and not any(int(a[0]) in {c.line for c in b.cmds} or a[0] == str(b.start) for _, a in fails)
        state = "ok" if ok else ("FAILED" if ended or any(c.line in started for c in b.cmds) else "not reached")
        log(f"   {rel}:{b.start} ```{b.lang} {state} ({describe(b)})")
        for c in b.cmds:
            first = c.text.splitlines()[0].strip()
            if c.mode == "never":
                log(f"     {c.line}: {first}  -- NOT REPLAYED: {c.note}")
                continue
            if c.mode == "skip":
                log(f"     {c.line}: {first}  -- SKIPPED: {c.note}")
                continue
            t = f"{dur[c.line]:6.1f} s" if c.line in dur else "   -    "
            extra = f"  [on {c.host}]" if c.host else ""
            if c.mode == "small" or c.note:
                extra += f"  [{c.note}]"
            log(f"     {c.line}: {t}  {first}{extra}")
            if ok and c.expect_finished:
                seg = segment(logtext, c.line)
                for g in c.expect_finished:
                    if not re.search(rf"^catlip: graph '{re.escape(g)}' finished", seg, re.M):
                        log(f"FAIL {rel}:{c.line}: the output shown has \"catlip: graph '{g}' finished\", "
                            f"the replay's does not: {first}")
                        log(tail(seg))
                        failures += 1
    if timed_out:
        last = starts[-1][1] if starts else 0
        b, c = by_line.get(last, (None, None))
        log(f"FAIL {rel}:{last}{f' (block at line {b.start})' if b else ''}: timed out after {args.timeout} s, in: "
            f"{c.text.splitlines()[0].strip() if c else '?'}")
        log(tail(logtext))
        failures += 1
    elif rc != 0:
        if fails:
            for kind, a in fails:
                line = int(a[0])
                b, c = by_line.get(line, (None, None))
                what = c.text.splitlines()[0].strip() if c else f"a background command of the block at line {line}"
                bg = " (in the background)" if kind == "bgfail" else ""
                at = f" (block at line {b.start})" if b else ""
                log(f"FAIL {rel}:{line}{at}: exit {a[1]}{bg}: {what}")
                seg = segment(logtext, line) if c else logtext
                log(tail(seg if seg.strip() else logtext))
        else:
            log(f"FAIL {rel}: the replay exited {rc}")
            log(tail(logtext))
        outs = sorted(glob.glob(os.path.join(scratch, "catlip-*.out")))
        for o in outs:
            with open(o, errors="replace") as f:
                log(f"   job output {os.path.basename(o)}:")
                log(tail(f.read(), 20))
        failures += 1
    skipped = sum(1 for b in blocks if b.skip) + sum(1 for b in blocks for c in b.cmds if c.mode == "skip")
    verdict = "FAILED" if failures else (f"ok, {skipped} SKIPPED" if skipped else "ok")
    log(f"   {rel}: {verdict} in {total:.1f} s")
    return failures, skipped, len(started)


SELF_TEST = {
    # doc text -> a line that the output must hold
    "fails.md": ("# t\n\n```sh\necho one\nfalse   # fails on purpose\necho never\n```\n",
                 "FAIL fails.md:5 (block at line 3): exit 1: false"),
    "placeholder.md": ("# t\n\n```sh\ncatlip run GRAPH\n```\n", "FAIL placeholder.md:4: placeholder GRAPH"),
    "output.md": ("# t\n\n```console\n$ echo hello\ncatlip: graph 'g' finished in 1 s\n```\n",
                  "FAIL output.md:4: the output shown has \"catlip: graph 'g' finished\""),
    "untyped.md": ("# t\n\n```\n$ echo hello\n```\n", "FAIL untyped.md:3: a transcript"),
    "background.md": ("# t\n\n```sh\n(sleep 0.2; exit 3) &\necho ok\n```\n",
                      "FAIL background.md:4 (block at line 3): exit 3 (in the background)"),
    "passes.md": ("# t\n\n```console\n$ build/bin/catlip run configs/default.toml --set numbers.count=100\n"
                  "catlip: graph 'default' finished in 0.1 s\n```\n", "   passes.md: ok in"),
}


def self_test(ctx, args):
    """The replay's own test: each doc above gives the expected verdict."""
    import contextlib
    import io
    bad = 0
    for name, (text, want) in SELF_TEST.items():
        path = os.path.join(ctx.tmp, "selftest-" + name)
        with open(path, "w") as f:
            f.write(text)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            fails, _, _ = replay_doc_as(path, name, ctx, args)
        out = buf.getvalue()
        ok = want in out and (fails == 0) == (name == "passes.md")
        log(f"self-test {name}: {'ok' if ok else 'WRONG'}")
        if not ok:
            log(f"  expected a line with: {want}\n  got:\n" + "\n".join("  | " + l for l in out.splitlines()))
            bad += 1
    return 1 if bad else 0


def replay_doc_as(path, name, ctx, args):
    d = os.path.join(ctx.tmp, "selftest-docs")
    os.makedirs(d, exist_ok=True)
    dst = os.path.join(d, name)
    shutil.copy(path, dst)
    return replay_doc(dst, ctx, args)


def quickstart_precondition(build):
    """Why `bash tools/quickstart.sh` cannot run as written here, or ''."""
    venv = os.path.join(SOURCE, ".venv")
    req = os.path.join(SOURCE, "tools", "requirements.txt")
    stamp = os.path.join(venv, ".catlip-requirements")
    if not os.access(os.path.join(venv, "bin", "python"), os.X_OK):
        return "no project venv (.venv): tools/setup.sh would download torch (2.6 GB)"
    try:
        with open(req, "rb") as a, open(stamp, "rb") as b:
            if a.read() != b.read():
                return "the venv is older than tools/requirements.txt: tools/setup.sh would reinstall it"
    except OSError:
        return "the venv has no requirements stamp: tools/setup.sh would reinstall it"
    pk = []
    with open(os.path.join(SOURCE, "tools", "packages.txt")) as f:
        for l in f:
            l = l.split("#")[0].strip()
            if l:
                pk.append(l)
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n"] + pk, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    have = {l.split()[0] for l in r.stdout.splitlines() if l.endswith("install ok installed")}
    missing = [p for p in pk if p not in have]
    if missing:
        return f"Debian packages missing ({' '.join(missing)}): tools/setup.sh would install them"
    if not os.path.exists(os.path.join(build, "build.ninja")):
        return f"{build} is not a Ninja build tree: tools/setup.sh would configure and build it"
    return ""


def overlay_changes(tmp):
    """Programs and plugins that the replay (tools/setup.sh's build step) rebuilt into the overlay."""
    upper = os.path.join(tmp, ".overlay", "upper")
    found = []
    for d in ("bin", "plugins", "lib"):
        for root, _, files in os.walk(os.path.join(upper, d)):
            found += [os.path.relpath(os.path.join(root, f), upper) for f in files]
    return sorted(found)


def isolate(build, tmp):
    """In a private mount namespace (re-exec'd as root): overlay on the build, n1-n3 in /etc/hosts."""
    notes = []
    upper, work = os.path.join(tmp, ".overlay", "upper"), os.path.join(tmp, ".overlay", "work")
    os.makedirs(upper)
    os.makedirs(work)
    r = run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={build},upperdir={upper},workdir={work}", build])
    if r.returncode == 0:
        notes.append(f"build {build}: overlay (writes land in the scratch directory)")
    else:
        notes.append(f"build {build}: NOT isolated (overlay: {r.stdout.strip()})")
    hosts = os.path.join(tmp, ".hosts")
    with open("/etc/hosts") as f:
        content = f.read()
    with open(hosts, "w") as f:
        f.write(content.rstrip("\n") + "\n# tests/docs/replay_docs.py: the emulated hosts\n"
                + "".join(f"{a} {n}\n" for n, a in HOSTS.items()))
    r = run(["mount", "--bind", hosts, "/etc/hosts"])
    notes.append("/etc/hosts: n1-n3 added (bind mount)" if r.returncode == 0
                 else f"/etc/hosts: NOT changed ({r.stdout.strip()})")
    return notes, r.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("docs", nargs="*", help="doc files relative to the source tree (default: all)")
    ap.add_argument("--soak", action="store_true", help="replay the quickstart as written (~10 min)")
    ap.add_argument("--build", default=os.environ.get("CATLIP_BUILD", os.path.join(SOURCE, "build")))
    ap.add_argument("--keep", action="store_true", default=bool(os.environ.get("CATLIP_KEEP_TEST_DIRS")))
    ap.add_argument("--list", action="store_true", help="only show the blocks and how each would run")
    ap.add_argument("--timeout", type=int, default=0, help="seconds per file (default 480, --soak 2400)")
    ap.add_argument("--self-test", action="store_true",
                    help="check that the replay fails on a failing command, a placeholder and a missing output line")
    args = ap.parse_args()
    args.timeout = args.timeout or (2400 if args.soak else 480)
    build = os.path.realpath(args.build)
    if not os.path.exists(os.path.join(build, "bin", "catlip")):
        log(f"replay_docs: no {build}/bin/catlip (set CATLIP_BUILD or --build)")
        return 2

    # As root: again, in a private mount namespace (overlay, /etc/hosts).
    if (os.geteuid() == 0 and not args.list and not os.environ.get("_CATLIP_DOCS_ISOLATED")
            and shutil.which("unshare")):
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if run(unshare + ["true"]).returncode == 0:
            env = dict(os.environ, _CATLIP_DOCS_ISOLATED="1")
            r = subprocess.run(unshare + [sys.executable] + sys.argv, env=env)
            return r.returncode if r.returncode >= 0 else 1
        log("replay_docs: cannot make a private mount namespace: the build is not isolated, no emulated hosts")

    log(f"replay_docs: interpreter {sys.executable} (Python {sys.version.split()[0]})")
    log(f"replay_docs: source {SOURCE}, build {build}, {'soak form' if args.soak else 'normal form'}")
    rels = args.docs or [p for g in DOC_GLOBS for p in sorted(glob.glob(g, root_dir=SOURCE))]
    ctx = Ctx()
    ctx.build = build
    ctx.files_done = 0
    ctx.tmp = tempfile.mkdtemp(prefix="catlip-docs.")
    ctx.hosts_skip = ctx.slurm_skip = ""
    isolated_hosts = False
    if os.environ.get("_CATLIP_DOCS_ISOLATED") and not args.list:
        notes, isolated_hosts = isolate(build, ctx.tmp)
        for n in notes:
            log(f"replay_docs: {n}")
    r = run(["bash", os.path.join(CLUSTER, "netns.sh"), "check"])
    if os.environ.get("CATLIP_TEST_NO_NETNS"):
        ctx.hosts_skip = "no emulated hosts: CATLIP_TEST_NO_NETNS is set"
    elif r.returncode != 0:
        ctx.hosts_skip = "no emulated hosts: " + (r.stdout.strip() or f"netns.sh check exit {r.returncode}")
    elif not isolated_hosts and not args.list:
        ctx.hosts_skip = "no emulated hosts: cannot add n1-n3 to /etc/hosts in a private mount namespace"
    if not ctx.hosts_skip:
        r = run(["bash", os.path.join(CLUSTER, "slurm.sh"), "check"])
        if r.returncode != 0:
            ctx.slurm_skip = "no private Slurm: " + (r.stdout.strip() or f"slurm.sh check exit {r.returncode}")
    ctx.quickstart_skip = quickstart_precondition(build)
    if ctx.quickstart_skip:
        ctx.quickstart_skip = "bash tools/quickstart.sh cannot run here: " + ctx.quickstart_skip
    log(f"replay_docs: scratch {ctx.tmp}{' (kept)' if args.keep else ' (removed afterwards)'}")

    failures = skipped = 0
    t0 = time.time()
    if args.self_test:
        try:
            return self_test(ctx, args)
        finally:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    try:
        for rel in rels:
            if not os.path.isfile(os.path.join(SOURCE, rel)):
                log(f"FAIL {rel}: no such file")
                failures += 1
                continue
            f, s, _ = replay_doc(rel, ctx, args)
            failures += f
            skipped += s
        rebuilt = overlay_changes(ctx.tmp)
        if rebuilt:
            log(f"replay_docs: NOTE: {len(rebuilt)} file(s) of the build were rebuilt during the replay (into the "
                f"overlay; the build under test was older than its sources), e.g. {', '.join(rebuilt[:4])}")
    finally:
        if not args.keep:
            if os.environ.get("_CATLIP_DOCS_ISOLATED"):
                run(["umount", "-l", build])
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    if args.list:
        verdict = "placeholders or untyped transcripts found" if failures else "listed"
    elif failures:
        verdict = f"FAILED ({failures})"
    elif skipped:
        verdict = f"{skipped} block(s) or command(s) SKIPPED, the rest passed"
    else:
        verdict = "every block passed"
    log(f"replay_docs: {len(rels)} file(s) in {time.time() - t0:.1f} s: {verdict}")
    if failures:
        return 1
    return 77 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
