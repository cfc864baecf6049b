#!/usr/bin/env python3
"""Embeds schema/NNNN_*.sql migrations into a C++ source as raw string literals."""
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
sources = sorted(pathlib.Path(p) for p in sys.argv[2:])
lines = ['// Generated from schema/*.sql by schema/embed.py. Do not edit.',
         '#include "storage/migrations.hpp"', '',
         'namespace billingd::storage {', '',
         'const std::vector<migration>& migrations() {',
         '    static const std::vector<migration> all{']
for number, path in enumerate(sources, start=1):
    match = re.fullmatch(r'(\d{4})_([a-z0-9_]+)\.sql', path.name)
    if not match or int(match.group(1)) != number:
        sys.exit(f'{path.name}: migrations must be named NNNN_name.sql and numbered from 0001')
    sql = path.read_text(encoding='utf-8')
    if ')billingd_sql"' in sql:
        sys.exit(f'{path.name}: contains the raw-string delimiter')
    lines.append(f'        {{{number}, "{match.group(2)}", R"billingd_sql({sql})billingd_sql"}},')
lines += ['    };', '    return all;', '}', '', '}  // namespace billingd::storage', '']
out.write_text('\n'.join(lines), encoding='utf-8')
