// Gatehouse pages' one script: drives the WebAuthn ceremonies with @simplewebauthn/browser
// (loaded before this file as the global SimpleWebAuthnBrowser) and posts JSON to the gateway.
// Every failure is shown in #error (aria-live) with which factor failed and what to do next.
/* global document, window, fetch, history */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const page = document.body.dataset.page;
  const MESSAGES = {
    ERR_WEBAUTHN_USER_VERIFICATION: 'Security key: it did not check your fingerprint or PIN. Use a key with a fingerprint reader (or set a PIN) and try again.',
    ERR_WEBAUTHN_UNKNOWN_CREDENTIAL: 'Security key: this key is not registered for this user name. Check the user name, or use your registered key.',
    ERR_WEBAUTHN_CHALLENGE: 'Security key: the request expired or was already used. Try again.',
    ERR_WEBAUTHN_ORIGIN: 'Security key: this page is not an allowed sign-in address. Open the sign-in link your administrator gave you.',
    ERR_WEBAUTHN_RP_ID: 'Security key: the key answered for another site. Try again from the sign-in page.',
    ERR_WEBAUTHN_INVALID: 'Security key: the answer did not verify. Try again.',
    ERR_WEBAUTHN_COUNTER: 'Security key: this key looks cloned and has been locked. Contact your security team.',
    ERR_WEBAUTHN_CREDENTIAL_LOCKED: 'Security key: this key is locked. Contact your security team to enroll a new one.',
    ERR_WEBAUTHN_AAGUID: 'Security key: this model of key is not allowed here. Use a key your organisation issued.',
    ERR_WEBAUTHN_ATTESTATION: 'Security key: the key could not prove it is a genuine approved model. Use a key your organisation issued.',
    ERR_TOTP_INVALID: 'OTP code: wrong or expired. Enter the code your token shows now.',
    ERR_TOTP_REPLAY: 'OTP code: this code was already used. Wait for the next code and enter that.',
    ERR_TOTP_NOT_ENROLLED: 'OTP code: no OTP token is assigned to you. Contact your administrator.',
    ERR_TOTP_TOKEN_REQUIRED: 'OTP token: none is assigned to you yet. Ask your administrator for a hardware OTP token, then open this link again.',
    ERR_ACR_INSUFFICIENT: 'Security key: this needs the key you signed in with (one whose make was verified). Use that key, or sign in again.',
    ERR_USER_LOCKED: 'Too many failed attempts: your account is locked for 15 minutes.',
    ERR_USER_DISABLED: 'Your account is disabled. Contact your administrator.',
    ERR_LOGIN_EXPIRED: 'The sign-in took too long. Start again.',
    ERR_ENROLLMENT_INVALID: 'This enrollment link is unknown, used or expired. Ask your administrator for a new one.',
    ERR_REDIRECT_REFUSED: 'The address you were going to is not allowed. Go to the application again.',
    ERR_ORIGIN_REFUSED: 'This request did not come from the sign-in page. Reload the page and try again.',
    ERR_RATE_LIMITED: 'Too many attempts from your network. Wait a minute and try again.',
    ERR_SESSION_REQUIRED: 'You are not signed in. Sign in first.',
    ERR_SESSION_EXPIRED: 'Your session ended. Sign in again.',
    NotAllowedError: 'Security key: cancelled, timed out, or it could not verify you. Touch your key and give your fingerprint (or PIN) when asked; a key that cannot verify you cannot be used.',
    InvalidStateError: 'Security key: this key is already registered.',
  };

  function show(code, fallback) {
    $('status').textContent = '';
    const el = $('error');
    el.textContent = MESSAGES[code] || fallback || 'Something failed. Reload the page and try again.';
    el.dataset.code = code || '';
    el.setAttribute('tabindex', '-1');
    el.focus();
  }
  function clear() { $('error').textContent = ''; $('error').dataset.code = ''; }
  function status(text) { $('status').textContent = text; }

  async function post(path, body) {
    const res = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body || {}) });
    let data = {};
    try { data = await res.json(); } catch { /* no JSON body */ }
    if (!res.ok) { const e = new Error((data.error && data.error.message) || ('HTTP ' + res.status)); e.code = data.error && data.error.code; throw e; }
    return data;
  }
  // @simplewebauthn/browser wraps the browser's DOMException: name the underlying failure
  function fail(err) {
    const inner = err && err.name === 'WebAuthnError' && err.cause ? err.cause : err;
    show(err.code && err.code.startsWith('ERR_') ? err.code : inner.name, inner.message);
  }
  function busy(button, on) { if (button) button.disabled = on; }

  const swa = window.SimpleWebAuthnBrowser;

  if (page === 'login') {
    const params = { rd: document.body.dataset.rd || '', state: document.body.dataset.state || '' };
    const afterStep = (r) => {
      if (r.redirect) { status('Signed in.'); window.location.assign(r.redirect); return; }
      if (r.next === 'totp') { $('login-form').hidden = true; $('totp-step').hidden = false; $('totp-code').focus(); status('Security key accepted. Now the OTP code.'); return; }
      if (r.next === 'webauthn-uv') { return webauthn(r.options); }
    };
    const webauthn = async (options) => {
      status('Touch your security key and give your fingerprint.');
      const response = await swa.startAuthentication({ optionsJSON: options });
      afterStep(await post('/.gatehouse/login/webauthn', { response }));
    };
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault(); clear();
      const button = $('login-webauthn'); busy(button, true);
      try {
        const r = await post('/.gatehouse/login/start', { username: $('username').value.trim(), rd: params.rd, state: params.state });
        if (r.next === 'webauthn-uv') await webauthn(r.options); else afterStep(r);
      } catch (err) { fail(err); } finally { busy(button, false); }
    });
    $('totp-step').addEventListener('submit', async (ev) => {
      ev.preventDefault(); clear();
      const button = $('totp-submit'); busy(button, true);
      try { afterStep(await post('/.gatehouse/login/totp', { code: $('totp-code').value.trim() })); }
      catch (err) { fail(err); $('totp-code').value = ''; $('totp-code').focus(); if (err.code === 'ERR_LOGIN_EXPIRED' || err.code === 'ERR_USER_LOCKED') { $('totp-step').hidden = true; $('login-form').hidden = false; } }
      finally { busy(button, false); }
    });
    $('username').focus();
  }

  if (page === 'step-up') {
    $('stepup-webauthn').addEventListener('click', async () => {
      clear(); const button = $('stepup-webauthn'); busy(button, true);
      try {
        const r = await post('/.gatehouse/step-up/start', { rd: document.body.dataset.rd || '' });
        status('Touch your security key and give your fingerprint.');
        const response = await swa.startAuthentication({ optionsJSON: r.options });
        const done = await post('/.gatehouse/step-up/webauthn', { response });
        window.location.assign(done.redirect);
      } catch (err) { fail(err); } finally { busy(button, false); }
    });
  }

  if (page === 'enroll') {
    // The token travels in the URL fragment: never sent in requests, logs or Referer.
    const token = window.location.hash.replace(/^#/, '');
    history.replaceState(null, '', window.location.pathname);
    const totpStep = async () => {
      const t = await post('/.gatehouse/enroll/totp/options', { token });
      if (t.qr) { $('enroll-totp-new').hidden = false; $('enroll-totp-qr').src = t.qr; $('enroll-totp-secret').textContent = t.secret; }
      $('enroll-totp-serial').textContent = t.serial;
      $('enroll-totp-step').hidden = false; $('enroll-totp-code-1').focus();
    };
    const finished = () => { $('enroll-totp-step').hidden = true; $('enroll-done').hidden = false; $('enroll-login').focus(); status('Enrollment complete.'); };
    (async () => {
      try {
        const s = await post('/.gatehouse/enroll/start', { token });
        $('enroll-user').textContent = s.user;
        $('enroll-webauthn').disabled = s.webauthnDone;
        if (s.webauthnDone && s.totp === 'required') await totpStep();
        if (s.complete) finished();
      } catch (err) { fail(err); }
    })();
    $('enroll-webauthn').addEventListener('click', async () => {
      clear(); const button = $('enroll-webauthn'); busy(button, true);
      try {
        const o = await post('/.gatehouse/enroll/webauthn/options', { token });
        status('Touch your security key and give your fingerprint.');
        const response = await swa.startRegistration({ optionsJSON: o.options });
        const r = await post('/.gatehouse/enroll/webauthn', { token, response });
        status('Security key registered.');
        if (r.complete) finished(); else await totpStep();
      } catch (err) { fail(err); busy(button, false); }
    });
    $('enroll-totp-step').addEventListener('submit', async (ev) => {
      ev.preventDefault(); clear();
      const button = $('enroll-totp-submit'); busy(button, true);
      try { await post('/.gatehouse/enroll/totp', { token, code1: $('enroll-totp-code-1').value.trim(), code2: $('enroll-totp-code-2').value.trim() }); finished(); }
      catch (err) { fail(err); } finally { busy(button, false); }
    });
  }
})();
