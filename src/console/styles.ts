/** The console's one stylesheet, served from /admin/console.css: the CSP allows no inline style. */
export const CONSOLE_CSS = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6575; --line: #d8dde5; --bg: #f6f7f9; --accent: #1f5fbf; --danger: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.5rem; background: #16202e; color: #fff; }
header a { color: #cfe0ff; text-decoration: none; }
header .who { margin-left: auto; color: #aab4c3; }
header form { margin: 0; }
main { padding: 1rem 1.5rem 3rem; max-width: 1200px; }
h1 { font-size: 1.35rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; }
td a.mono { white-space: nowrap; }
.muted { color: var(--muted); }
.panel { background: #fff; border: 1px solid var(--line); padding: .8rem 1rem; margin: .6rem 0; }
form.inline { display: inline; }
.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
label { display: flex; flex-direction: column; gap: .15rem; font-size: 12.5px; color: var(--muted); }
input, select, textarea { font: inherit; padding: .3rem .45rem; border: 1px solid #b9c1cd; border-radius: 3px; color: var(--fg); }
button, .button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 3px; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger, .button.danger { background: var(--danger); border-color: var(--danger); }
.status { padding: .05rem .45rem; border-radius: 9px; font-size: 12px; font-weight: 600; }
.status-active { background: #dcf5e3; color: #13612e; }
.status-revoked { background: #fde2e0; color: var(--danger); }
.status-expired { background: #eceff3; color: var(--muted); }
.notice { border-left: 4px solid var(--accent); }
.warn { border-left: 4px solid #d9a400; }
.error { border-left: 4px solid var(--danger); }
.actions { display: flex; gap: .5rem; flex-wrap: wrap; }
.pager { margin: .5rem 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
svg.chart { background: #fff; border: 1px solid var(--line); width: 100%; height: auto; }
.legend span { margin-right: 1rem; }
.sw { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: -1px; }
.o-admitted { background: #2f7d4f; } .o-rate_limited { background: #d9a400; } .o-revoked { background: #b42318; } .o-other { background: #7a869a; }
.new-address { font-weight: 600; color: var(--danger); }
.secret { font-size: 15px; padding: .5rem; background: #fffbe6; border: 1px dashed #d9a400; word-break: break-all; }
`;
