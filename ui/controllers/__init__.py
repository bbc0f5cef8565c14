"""The app's behaviour, one small controller per concern; `ui.app.PosApp` only wires them.

- navigation: screens, go / go_idle, language, messages, spinner, run_async
- status:     sync and reader status shown in the status bar
- input:      keyboard-wedge at Window level, activity, inactivity timeout
- member:     identification events, phone lookup, the member screen's text
- sale:       earn, redeem, give, enroll, receipts
- staff:      PIN, report, retry, sync now, mode

Each takes its dependencies in its constructor. Controllers call the core's services (the
`pos_client.ports.TerminalPort` a running terminal offers), never the outbox. Background
threads never touch widgets: bus events are re-posted onto the Kivy clock by the app, and
`Navigator.run_async` hands results back on the clock.

kv files call one method: the screen's own (`root.confirm()`) or a controller's
(`app.nav.go("member")`); they read the app's properties and `app.tr` / `app.number`.
"""
