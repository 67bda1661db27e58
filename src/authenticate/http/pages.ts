// The pages Gatehouse serves to people: plain semantic HTML, one stylesheet, one script (plus
// the @simplewebauthn/browser bundle). No inline script or style, so the CSP can forbid both.
//
// Stable element ids (the browser test drives these; keep them):
//   every page   #error (role=alert, aria-live: the failure, which factor, what to do next)
//                #status (aria-live=polite: progress)
//   login        #login-form, #username, #login-webauthn, #totp-step, #totp-code, #totp-submit
//   enroll       #enroll-user, #enroll-webauthn, #enroll-totp-step, #enroll-totp-qr (img),
//                #enroll-totp-secret, #enroll-totp-serial, #enroll-totp-code-1, #enroll-totp-code-2,
//                #enroll-totp-submit, #enroll-done, #enroll-login
//   step-up      #stepup-webauthn
//   logout       #logout-form, #logout (the button), #logged-out, #login-again
//   denied       #denied, #denied-code
// Each of these also carries data-testid with the same name.
// The body's data-page names the page; data-* on it carry the values the script needs.

export const ASSET_PREFIX = '/.gatehouse/assets/';

export function esc(v: string): string {
  return v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The document every page Gatehouse serves shares (the console's too): one stylesheet, deferred scripts, data-* on the body. */
export function htmlDocument(o: { title: string; stylesheet: string; scripts?: readonly string[]; data: Record<string, string>; body: string }): string {
  const data = Object.entries(o.data)
    .map(([k, v]) => ` data-${k}="${esc(v)}"`)
    .join('');
  const scripts = (o.scripts ?? []).map((src) => `\n  <script src="${esc(src)}" defer></script>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="same-origin">
  <title>${esc(o.title)} · Gatehouse</title>
  <link rel="stylesheet" href="${esc(o.stylesheet)}">${scripts}
</head>
<body${data}>
${o.body}
</body>
</html>
`;
}

function layout(o: { page: string; title: string; data?: Record<string, string>; body: string; script?: boolean; error?: string }): string {
  return htmlDocument({
    title: o.title,
    stylesheet: `${ASSET_PREFIX}gatehouse.css`,
    scripts: o.script === false ? [] : [`${ASSET_PREFIX}webauthn.js`, `${ASSET_PREFIX}gatehouse.js`],
    data: { page: o.page, ...o.data },
    body: `  <main>
    <h1>${esc(o.title)}</h1>
    <p id="error" data-testid="error" class="error" role="alert" aria-live="assertive">${esc(o.error ?? '')}</p>
    <p id="status" data-testid="status" class="status" aria-live="polite"></p>
${o.body}
  </main>`,
  });
}

export function loginPage(o: { rd: string; state: string }): string {
  return layout({
    page: 'login',
    title: 'Sign in',
    data: { rd: o.rd, state: o.state },
    body: `    <form id="login-form" data-testid="login-form" novalidate>
      <p>Sign in with your security key (fingerprint or face), then the code from your OTP token.</p>
      <label for="username">User name</label>
      <input id="username" data-testid="username" name="username" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" required>
      <button id="login-webauthn" data-testid="login-webauthn" type="submit">Sign in with security key</button>
    </form>
    <form id="totp-step" data-testid="totp-step" hidden novalidate>
      <label for="totp-code">Code from your OTP token</label>
      <input id="totp-code" data-testid="totp-code" name="code" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="one-time-code" required>
      <button id="totp-submit" data-testid="totp-submit" type="submit">Verify code</button>
    </form>`,
  });
}

export function enrollPage(): string {
  return layout({
    page: 'enroll',
    title: 'Set up your sign-in',
    body: `    <p>Enrolling <strong id="enroll-user" data-testid="enroll-user">…</strong>.</p>
    <section aria-labelledby="enroll-key-title">
      <h2 id="enroll-key-title">1. Security key</h2>
      <p>Insert your security key, press the button, then touch the key and give your fingerprint (or PIN) when asked.</p>
      <button id="enroll-webauthn" data-testid="enroll-webauthn" type="button" disabled>Register security key</button>
    </section>
    <form id="enroll-totp-step" data-testid="enroll-totp-step" hidden novalidate aria-labelledby="enroll-totp-title">
      <h2 id="enroll-totp-title">2. OTP token</h2>
      <div id="enroll-totp-new" hidden>
        <p>Program your OTP token with this QR code (or the secret below).</p>
        <img id="enroll-totp-qr" data-testid="enroll-totp-qr" alt="QR code holding the OTP secret" width="240" height="240">
        <p>Secret: <code id="enroll-totp-secret" data-testid="enroll-totp-secret"></code></p>
      </div>
      <p>Enter two consecutive codes from token <span id="enroll-totp-serial" data-testid="enroll-totp-serial"></span> (wait for the code to change between them).</p>
      <label for="enroll-totp-code-1">First code</label>
      <input id="enroll-totp-code-1" data-testid="enroll-totp-code-1" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="off" required>
      <label for="enroll-totp-code-2">Next code</label>
      <input id="enroll-totp-code-2" data-testid="enroll-totp-code-2" inputmode="numeric" pattern="[0-9]*" maxlength="8" autocomplete="off" required>
      <button id="enroll-totp-submit" data-testid="enroll-totp-submit" type="submit">Confirm token</button>
    </form>
    <section id="enroll-done" data-testid="enroll-done" hidden>
      <h2>Done</h2>
      <p>Your security key and OTP token are registered.</p>
      <p><a id="enroll-login" data-testid="enroll-login" href="/.gatehouse/login">Sign in now</a></p>
    </section>`,
  });
}

export function stepUpPage(o: { rd: string; user: string }): string {
  return layout({
    page: 'step-up',
    title: 'Confirm it is you',
    data: { rd: o.rd },
    body: `    <p>This application asks for a fresh confirmation, ${esc(o.user)}. Touch your security key and give your fingerprint.</p>
    <button id="stepup-webauthn" data-testid="stepup-webauthn" type="button">Confirm with security key</button>`,
  });
}

export function logoutPage(o: { user: string | undefined }): string {
  return layout({
    page: 'logout',
    title: 'Sign out',
    script: false,
    body: `    <form id="logout-form" data-testid="logout-form" method="post" action="/.gatehouse/logout">
      <p>${o.user === undefined ? 'You are not signed in on this site.' : `Signed in as <strong>${esc(o.user)}</strong>.`}</p>
      <button id="logout" data-testid="logout" type="submit">Sign out</button>
    </form>`,
  });
}

export function loggedOutPage(): string {
  return layout({
    page: 'logged-out',
    title: 'Signed out',
    script: false,
    body: `    <p id="logged-out" data-testid="logged-out">You are signed out. Your session has ended on every gateway.</p>
    <p><a id="login-again" data-testid="login-again" href="/.gatehouse/login">Sign in again</a></p>`,
  });
}

/** A refusal shown to a person: what failed (the code) and what to do next; never a stack. */
export function errorPage(o: { title: string; code: string; message: string; next: string; requestId: string }): string {
  return layout({
    page: 'denied',
    title: o.title,
    error: o.title,
    script: false,
    body: `    <section id="denied" data-testid="denied">
      <p>${esc(o.message)}</p>
      <p>${esc(o.next)}</p>
      <p class="small">Code <code id="denied-code" data-testid="denied-code">${esc(o.code)}</code> · request ${esc(o.requestId)}</p>
    </section>`,
  });
}
