"""HTML templates of the server-rendered pages, and the one style sheet.

Bottle SimpleTemplate: `{{value}}` is HTML-escaped, `{{!value}}` is not and is used
only for markup we rendered ourselves. Kept in Python rather than .tpl files so they
ship in the wheel without package-data rules. No inline script or style anywhere:
the Content-Security-Policy forbids both.
"""

from __future__ import annotations

from typing import Final

import bottle

LAYOUT: Final = bottle.SimpleTemplate("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · YakYak</title>
<link rel="stylesheet" href="/static/yakyak.css">
</head>
<body>
<header>
<span class="brand">YakYak</span>
% if nav:
<nav>
% for href, label in nav:
<a href="{{href}}">{{label}}</a>
% end
<form method="post" action="/logout" class="inline">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<button type="submit">Sign out {{username}}</button>
</form>
</nav>
% end
</header>
<main>
<h1>{{title}}</h1>
{{!body}}
</main>
</body>
</html>
""")

LOGIN: Final = bottle.SimpleTemplate("""% if message:
<p class="error" role="alert">{{message}}</p>
% end
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<input type="hidden" name="next" value="{{next}}">
{{!fields}}
<button type="submit">Sign in</button>
</form>
""")

PASSWORD: Final = bottle.SimpleTemplate("""% if forced:
<p class="notice">This is your first sign-in (or an administrator set your password):
choose a new password before going on.</p>
% end
<form method="post" action="/password">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
{{!fields}}
<button type="submit">Change password</button>
</form>
""")

DASHBOARD: Final = bottle.SimpleTemplate("""<p>Signed in as <strong>{{username}}</strong>
(role {{role}}{{', extension ' + extension if extension else ''}}).</p>
% if notice:
<p class="notice">{{notice}}</p>
% end
<h2>What this box has so far</h2>
<ul>
% for line in facts:
<li>{{line}}</li>
% end
</ul>
<h2>What you can do here</h2>
<ul>
<li><a href="/tokens">API tokens</a> for scripts using the REST API
(<a href="/api/openapi.json">OpenAPI description</a>).</li>
% if may_audit:
<li><a href="/audit">Audit log</a>: every change made here, who made it and from where.</li>
% end
<li><a href="/password">Change your password</a>.</li>
</ul>
<p>Extensions, users and roles are managed through the REST API for now; their pages
come next.</p>
""")

TOKENS: Final = bottle.SimpleTemplate("""% if secret:
<div class="notice">
<p>Your new token <strong>{{secret_name}}</strong>. Copy it now: it is shown only once.</p>
<p><code class="secret">{{secret}}</code></p>
<p>Use it as <code>Authorization: Bearer {{secret}}</code>.</p>
</div>
% end
<h2>Your tokens</h2>
% if tokens:
<table>
<thead><tr><th>Name</th><th>Starts with</th><th>Created</th><th>Last used</th><th></th></tr></thead>
<tbody>
% for token in tokens:
<tr>
<td>{{token.name}}</td><td><code>{{token.prefix}}…</code></td>
<td>{{when(token.created_at)}}</td>
<td>{{when(token.last_used_at) if token.last_used_at else 'never'}}</td>
<td><form method="post" action="/tokens/{{token.id}}/revoke" class="inline">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<button type="submit">Revoke</button></form></td>
</tr>
% end
</tbody>
</table>
% else:
<p>You have no API tokens.</p>
% end
<h2>New token</h2>
<form method="post" action="/tokens">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
{{!fields}}
<button type="submit">Create token</button>
</form>
""")

AUDIT: Final = bottle.SimpleTemplate("""% if entries:
<table>
<thead><tr><th>When (UTC)</th><th>Who</th><th>What</th><th>Target</th><th>From</th>
<th>Details</th></tr></thead>
<tbody>
% for e in entries:
<tr><td>{{when(e.at)}}</td><td>{{e.actor}}</td><td>{{e.action}}</td><td>{{e.target}}</td>
<td>{{e.address}}</td><td>{{e.detail}}</td></tr>
% end
</tbody>
</table>
% if older:
<p><a href="/audit?before={{older}}">Older entries</a></p>
% end
% else:
<p>Nothing recorded yet.</p>
% end
""")

ERROR: Final = bottle.SimpleTemplate("""<p>{{message}}</p>
<p><a href="/">Back to the dashboard</a></p>
""")

STYLESHEET: Final = """\
:root { color-scheme: light dark; --accent: #2a6f97; --bad: #b00020; }
body { font-family: system-ui, sans-serif; margin: 0; line-height: 1.4; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem;
  padding: 0.5rem 1rem; background: var(--accent); color: #fff; }
header a, header button { color: #fff; }
.brand { font-weight: bold; font-size: 1.2rem; }
nav { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
main { max-width: 60rem; padding: 1rem; }
.field { margin: 0.75rem 0; display: flex; flex-direction: column; max-width: 24rem; }
.field.invalid input { border: 2px solid var(--bad); }
.error { color: var(--bad); margin: 0.25rem 0; }
.notice { border-left: 4px solid var(--accent); padding: 0.25rem 0.75rem; }
form.inline { display: inline; }
button { padding: 0.3rem 0.8rem; cursor: pointer; }
header button { background: transparent; border: 1px solid #fff; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #8884; }
code.secret { word-break: break-all; font-size: 1.1rem; }
"""
