#!/usr/bin/env bash
# The manual pages (tools/man/*.scd) and the programs' --help say the same thing, both ways, found from the
# programs themselves so that a new command or flag fails this test until it is documented:
#   - every command `synclog --help` lists has its page synclog-COMMAND.1 (a command with neither flags nor
#     subcommands, like `version`, may be described in synclog.1 instead), and every page synclog-X.1 is a command;
#   - every subcommand a command's --help shows (`synclog topic create ...`) appears in its page as
#     "synclog COMMAND SUBCOMMAND";
#   - the flags a command's --help defines (in its usage lines, or at the start of a line) are exactly the flags
#     its page defines (lines that start with *--flag*), global flags aside (defined in synclog.1 and equal to
#     those of `synclog --help`);
#   - the same for `synclogd --help` and synclogd.8;
#   - a flag mentioned anywhere in a page exists in some --help of that program.
# Usage: tests/integration/test_man_pages.sh BUILD_DIR.
set -euo pipefail
build=${1:-build/release}
exec python3 - "$build" <<'PY'
import os, re, subprocess, sys

build = sys.argv[1]
synclog = os.path.join(build, "bin/synclog")
synclogd = os.path.join(build, "bin/synclogd")
man = "tools/man"
failures = []

def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

FLAG = re.compile(r"--[a-z][a-z0-9-]*")

def help_text(*args):
    r = subprocess.run(list(args) + ["--help"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s --help exited %d" % (" ".join(args), r.returncode))
    return r.stdout

def usage_block(text):
    """The usage lines: from 'usage:' to the first blank line."""
    lines = text.splitlines()
    block = []
    for line in lines:
        if block and line.strip() == "":
            break
        if block or line.startswith("usage:"):
            block.append(line)
    return block

def defined_flags(text):
    """Flags a --help defines: in its usage lines, or opening a line (an option's description)."""
    flags = set()
    for line in usage_block(text):
        flags |= set(FLAG.findall(line))
    for line in text.splitlines():
        m = re.match(r"\s*(--[a-z][a-z0-9-]*)", line)
        if m:
            flags.add(m.group(1))
    return flags

def page_text(name):
    path = os.path.join(man, name + ".scd")
    if not os.path.exists(path):
        return None
    return open(path).read()

def page_defined_flags(text):
    """Flags a page defines: definition lines that start with *--flag* (the scdoc form of an option list)."""
    return {m.group(1) for m in re.finditer(r"^\*(--[a-z][a-z0-9-]*)\*", text, re.M)}

def page_mentioned_flags(text):
    """Flags in prose, and in examples the flags given to synclog or synclogd (not to systemctl or jq)."""
    flags = set()
    in_code = False
    for line in text.replace("\\", "").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            flags |= set(FLAG.findall(line))
            continue
        for segment in re.split(r"\||;|&&", line.split("#")[0]):
            words = segment.split()
            if words and os.path.basename(words[0]) in ("synclog", "synclogd"):
                flags |= set(FLAG.findall(segment))
    return flags

# ---- synclog: commands and global flags ----
main = help_text(synclog)
commands = {}
in_commands = False
for line in main.splitlines():
    if line.startswith("commands:"):
        in_commands = True
        continue
    if in_commands:
        if not line.strip():
            break
        m = re.match(r"  ([a-z][a-z-]*)(?: ([a-z][a-z|-]*))?(?:\s|$)", line)
        if m:
            subs = commands.setdefault(m.group(1), set())
            if m.group(2):
                subs |= set(m.group(2).split("|"))
global_help = main[main.index("global flags"):] if "global flags" in main else ""
global_flags = set(FLAG.findall(" ".join(usage_block(main)))) | {
    m.group(1) for m in re.finditer(r"^\s*(--[a-z][a-z0-9-]*)", global_help, re.M)}
if not commands:
    fail("no commands found in `synclog --help`")

top = page_text("synclog.1")
if top is None:
    fail("tools/man/synclog.1.scd is missing")
    top = ""
if page_defined_flags(top) != global_flags:
    fail("global flags: `synclog --help` has %s, synclog.1 defines %s" %
         (sorted(global_flags), sorted(page_defined_flags(top))))

all_help_flags = set(global_flags)
for cmd, listed_subs in sorted(commands.items()):
    text = help_text(synclog, cmd)
    subs = set(listed_subs)
    for line in usage_block(text):
        m = re.search(r"synclog %s ([a-z][a-z|-]*)(?:\s|$)" % re.escape(cmd), line)
        if m:
            subs |= set(m.group(1).split("|"))
    flags = defined_flags(text)
    for sub in sorted(subs):
        flags |= defined_flags(help_text(synclog, cmd, sub))
    flags -= global_flags
    all_help_flags |= flags
    page = page_text("synclog-%s.1" % cmd)
    if page is None:
        if flags or subs:
            fail("`synclog %s` has flags or subcommands but no page tools/man/synclog-%s.1.scd" % (cmd, cmd))
        elif not re.search(r"^\*%s\*" % re.escape(cmd), top, re.M):
            fail("`synclog %s` is described neither in its own page nor in synclog.1's COMMANDS" % cmd)
        continue
    if not re.search(r"^\*%s" % re.escape(cmd), top, re.M):
        fail("synclog.1 does not list the command %s" % cmd)
    for sub in sorted(subs):
        if not re.search(r"synclog %s\*? \*?%s\b" % (re.escape(cmd), re.escape(sub)), page):
            fail("synclog-%s.1 does not describe the subcommand `synclog %s %s`" % (cmd, cmd, sub))
    documented = page_defined_flags(page)
    for f in sorted(flags - documented):
        fail("`synclog %s` has %s, which synclog-%s.1 does not define" % (cmd, f, cmd))
    # A command may define a flag of its own that shares a global flag's name (backfill's --version COL, which
    # names the version column; the global --version is taken only in first place): not an extra definition.
    for f in sorted(documented - flags - global_flags):
        fail("synclog-%s.1 defines %s, which no `synclog %s` --help has" % (cmd, f, cmd))

for name in sorted(os.listdir(man)):
    m = re.match(r"synclog-([a-z-]+)\.1\.scd$", name)
    if m and m.group(1) not in commands:
        fail("tools/man/%s documents a command `synclog --help` does not list" % name)

# ---- synclogd ----
dtext = help_text(synclogd)
dflags = defined_flags(dtext)
dpage = page_text("synclogd.8") or ""
if not dpage:
    fail("tools/man/synclogd.8.scd is missing")
for f in sorted(dflags - page_defined_flags(dpage)):
    fail("`synclogd --help` has %s, which synclogd.8 does not define" % f)
for f in sorted(page_defined_flags(dpage) - dflags):
    fail("synclogd.8 defines %s, which `synclogd --help` does not have" % f)

# ---- no page mentions a flag that does not exist ----
for name in sorted(os.listdir(man)):
    if not name.endswith(".scd"):
        continue
    text = open(os.path.join(man, name)).read()
    known = all_help_flags | dflags
    for f in sorted(page_mentioned_flags(text) - known):
        fail("tools/man/%s mentions %s, which no --help has" % (name, f))

if failures:
    sys.exit(1)
print("ok: %d commands, %d synclog flags and %d synclogd flags agree with %d pages" %
      (len(commands), len(all_help_flags), len(dflags), len([n for n in os.listdir(man) if n.endswith(".scd")])))
PY
