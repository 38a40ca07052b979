// tessera's WebAuthn helper for the self-service UI nodes (served at
// /.well-known/ory/webauthn.js). The trigger buttons call the global functions below with the
// options in their value; the result is written to the hidden input and the form submitted.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || window.__oryWebAuthnInitialized) {
    return;
  }

  function fromBase64Url(value) {
    var b64 = String(value).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function toBase64Url(buffer) {
    if (!buffer) {
      return undefined;
    }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function optionsFrom(options, triggerSelector) {
    if (options) {
      return typeof options === "string" ? JSON.parse(options) : options;
    }
    var trigger = document.querySelector(triggerSelector);
    return JSON.parse(trigger.value);
  }

  function submit(resultSelector, triggerSelector, value) {
    var result = document.querySelector(resultSelector);
    result.value = JSON.stringify(value);
    var trigger = document.querySelector(triggerSelector);
    var form = (trigger || result).closest("form");
    if (form) {
      form.submit();
    }
  }

  function login(options, resultSelector, triggerSelector) {
    resultSelector = resultSelector || '*[name="webauthn_login"]';
    triggerSelector = triggerSelector || '*[name="webauthn_login_trigger"]';
    var opt = optionsFrom(options, triggerSelector);
    opt.publicKey.challenge = fromBase64Url(opt.publicKey.challenge);
    (opt.publicKey.allowCredentials || []).forEach(function (c) {
      c.id = fromBase64Url(c.id);
    });
    return navigator.credentials
      .get(opt)
      .then(function (cred) {
        submit(resultSelector, triggerSelector, {
          id: cred.id,
          rawId: toBase64Url(cred.rawId),
          type: cred.type,
          response: {
            authenticatorData: toBase64Url(cred.response.authenticatorData),
            clientDataJSON: toBase64Url(cred.response.clientDataJSON),
            signature: toBase64Url(cred.response.signature),
            userHandle: toBase64Url(cred.response.userHandle),
          },
        });
      })
      .catch(function (err) {
        alert(err);
      });
  }

  function register(options, resultSelector, triggerSelector) {
    resultSelector = resultSelector || '*[name="webauthn_register"]';
    triggerSelector = triggerSelector || '*[name="webauthn_register_trigger"]';
    var opt = optionsFrom(options, triggerSelector);
    opt.publicKey.challenge = fromBase64Url(opt.publicKey.challenge);
    opt.publicKey.user.id = fromBase64Url(opt.publicKey.user.id);
    (opt.publicKey.excludeCredentials || []).forEach(function (c) {
      c.id = fromBase64Url(c.id);
    });
    return navigator.credentials
      .create(opt)
      .then(function (cred) {
        submit(resultSelector, triggerSelector, {
          id: cred.id,
          rawId: toBase64Url(cred.rawId),
          type: cred.type,
          response: {
            attestationObject: toBase64Url(cred.response.attestationObject),
            clientDataJSON: toBase64Url(cred.response.clientDataJSON),
          },
        });
      })
      .catch(function (err) {
        alert(err);
      });
  }

  window.oryWebAuthnLogin = login;
  window.oryWebAuthnRegistration = register;
  // The names older UIs call.
  window.__oryWebAuthnLogin = login;
  window.__oryWebAuthnRegistration = register;
  window.__oryWebAuthnInitialized = true;
  window.dispatchEvent(new Event("oryWebAuthnInitialized"));
})();
