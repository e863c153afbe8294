#!/usr/bin/env python3
"""scripts/upgrade-sync.py FRAGMENT PART NAME...: copy the current definition of each named
function (outreach.NAME(...), every overload written in PART) from a sql/parts file into an
upgrade fragment as CREATE OR REPLACE, replacing the copy the fragment had.  For merges of
branches that changed the same 0.2.0 function: the fragment must hold the final text, or
test/sql/extension_upgrade.sql reports the difference."""
import re, sys

def defs(text, name):
    # CREATE [OR REPLACE] FUNCTION outreach.name(... $tag$ ... $tag$;
    pat = re.compile(r'^CREATE (?:OR REPLACE )?FUNCTION outreach\.' + re.escape(name) + r'\(.*?^(?:AS )?.*?(\$[a-z_]*\$).*?\1;\n', re.S | re.M)
    return [(m.start(), m.end(), m.group(0)) for m in pat.finditer(text)]

frag, part, names = sys.argv[1], sys.argv[2], sys.argv[3:]
ptext, ftext = open(part).read(), open(frag).read()
for name in names:
    new = [d[2].replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1) for d in defs(ptext, name)]
    old = defs(ftext, name)
    if not new:
        sys.exit(f'{name}: not defined in {part}')
    if old:
        start, end = old[0][0], old[-1][1]
        ftext = ftext[:start] + ''.join(new) + ftext[end:] if len(old) == 1 else ftext
        if len(old) > 1:
            for s, e, _ in reversed(old[1:]):
                ftext = ftext[:s] + ftext[e:]
            s, e, _ = old[0]
            ftext = ftext[:s] + ''.join(new) + ftext[e:]
    else:
        ftext += '\n' + ''.join(new)
open(frag, 'w').write(ftext)
