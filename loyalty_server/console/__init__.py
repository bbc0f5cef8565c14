"""The store managers' web console: server-rendered pages over the store's ledger (issue 13).

`accounts` (staff and their passwords), `sessions` (signed cookies, CSRF), `audit` (who
changed what and why), `i18n` (four languages), `charts` (SVG drawn here), `data` (what each
page shows), `routes` (the pages). Nothing runs at import: `routes.install_console` builds it.
"""
