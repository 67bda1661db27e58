// The console's one HTML page. No inline script or style (the CSP forbids both): the script
// fills the tables and draws the SVGs with DOM APIs from the JSON APIs.
//
// Stable element ids (the browser test drives these; each also carries data-testid):
//   #error, #status, #console-user
//   audit     #audit-filters, #audit-user, #audit-action, #audit-outcome, #audit-namespace,
//             #audit-since, #audit-apply, #audit-table, #audit-rows (tbody), #audit-more,
//             #audit-count, #timeline (the SVG's container)
//   sessions  #sessions-table, #session-rows (tbody; each row data-sid, its button
//             .revoke with data-testid revoke-<sid>), #sessions-refresh
//   graph     #graph (the SVG's container)
//   explain   #explain-form, #explain-from, #explain-namespace, #explain-service, #explain-method,
//             #explain-path, #explain-submit, #explain-result, #explain-verdict, #explain-rule,
//             #explain-reasons
// The body's data-can-revoke is "true" for security-admins (the revoke buttons are shown).

import { esc, htmlDocument } from '../../authenticate/http/pages.js';

const t = (id: string): string => `id="${id}" data-testid="${id}"`;

export function consolePage(o: { user: string; canRevoke: boolean; assetPrefix: string }): string {
  return htmlDocument({
    title: 'Security console',
    stylesheet: `${o.assetPrefix}console.css`,
    scripts: [`${o.assetPrefix}console.js`],
    data: { page: 'console', 'can-revoke': o.canRevoke ? 'true' : 'false' },
    body: `  <header>
    <h1>Security console</h1>
    <p>Signed in as <strong ${t('console-user')}>${esc(o.user)}</strong>${o.canRevoke ? ' (security admin)' : ' (security auditor)'} · <a href="/.gatehouse/logout">Sign out</a></p>
  </header>
  <p ${t('error')} class="error" role="alert" aria-live="assertive"></p>
  <p ${t('status')} class="status" aria-live="polite"></p>
  <main>
    <section aria-labelledby="audit-title">
      <h2 id="audit-title">Audit log</h2>
      <form ${t('audit-filters')} class="filters" novalidate>
        <label>User <input ${t('audit-user')} name="user" autocomplete="off" spellcheck="false"></label>
        <label>Action <input ${t('audit-action')} name="action" placeholder="proxy.* or authentication.*" autocomplete="off" spellcheck="false"></label>
        <label>Outcome <select ${t('audit-outcome')} name="outcome"><option value="">any</option><option value="success">success</option><option value="failure">failure</option></select></label>
        <label>Namespace <input ${t('audit-namespace')} name="namespace" autocomplete="off" spellcheck="false"></label>
        <label>Since <input ${t('audit-since')} name="since" value="24h" placeholder="15m, 24h or an ISO time" autocomplete="off" spellcheck="false"></label>
        <button ${t('audit-apply')} type="submit">Apply</button>
      </form>
      <h3>Allows and denies per namespace</h3>
      <div ${t('timeline')} class="plot" role="img" aria-label="Timeline of allowed and denied requests per namespace"></div>
      <p class="small"><span ${t('audit-count')}></span></p>
      <div class="scroll">
        <table ${t('audit-table')}>
          <thead><tr><th>Time</th><th>Action</th><th>Outcome</th><th>User / subject</th><th>Namespace</th><th>Target</th><th>Reason / code</th></tr></thead>
          <tbody ${t('audit-rows')}></tbody>
        </table>
      </div>
      <button ${t('audit-more')} type="button" hidden>Older events</button>
    </section>
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Live sessions</h2>
      <button ${t('sessions-refresh')} type="button">Refresh</button>
      <div class="scroll">
        <table ${t('sessions-table')}>
          <thead><tr><th>User</th><th>Roles</th><th>Created</th><th>Last seen</th><th>IP</th><th>Session (sid)</th><th${o.canRevoke ? '' : ' hidden'}>Revoke</th></tr></thead>
          <tbody ${t('session-rows')}></tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="graph-title">
      <h2 id="graph-title">Segmentation</h2>
      <p class="small">Namespaces, services and roles; an arrow is a flow an allow rule in force admits (dashed: dry-run).</p>
      <div ${t('graph')} class="plot" role="img" aria-label="Segmentation graph"></div>
    </section>
    <section aria-labelledby="explain-title">
      <h2 id="explain-title">Explain a decision</h2>
      <form ${t('explain-form')} class="filters" novalidate>
        <label>From <input ${t('explain-from')} name="from" placeholder="spiffe://td/ns/a/sa/b or a role" required autocomplete="off" spellcheck="false"></label>
        <label>Namespace <input ${t('explain-namespace')} name="namespace" required autocomplete="off" spellcheck="false"></label>
        <label>Service <input ${t('explain-service')} name="service" required autocomplete="off" spellcheck="false"></label>
        <label>Method <input ${t('explain-method')} name="method" value="GET" autocomplete="off" spellcheck="false"></label>
        <label>Path <input ${t('explain-path')} name="path" value="/" autocomplete="off" spellcheck="false"></label>
        <button ${t('explain-submit')} type="submit">Explain</button>
      </form>
      <dl ${t('explain-result')} hidden>
        <dt>Verdict</dt><dd ${t('explain-verdict')}></dd>
        <dt>Rule</dt><dd ${t('explain-rule')}></dd>
        <dt>Reasons</dt><dd ${t('explain-reasons')}></dd>
      </dl>
    </section>
  </main>`,
  });
}
