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

  // What the server takes: the credential with its binary fields in base64url.
  function assertion(cred) {
    return {
      id: cred.id,
      rawId: toBase64Url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toBase64Url(cred.response.authenticatorData),
        clientDataJSON: toBase64Url(cred.response.clientDataJSON),
        signature: toBase64Url(cred.response.signature),
        userHandle: toBase64Url(cred.response.userHandle),
      },
    };
  }

  function attestation(cred) {
    return {
      id: cred.id,
      rawId: toBase64Url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toBase64Url(cred.response.attestationObject),
        clientDataJSON: toBase64Url(cred.response.clientDataJSON),
      },
    };
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
        submit(resultSelector, triggerSelector, assertion(cred));
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
        submit(resultSelector, triggerSelector, attestation(cred));
      })
      .catch(function (err) {
        alert(err);
      });
  }

  // --- passkeys: the options are in hidden inputs (passkey_challenge, passkey_create_data) --

  function field(name) {
    return document.querySelector('*[name="' + name + '"]');
  }

  function requestOptions(raw) {
    var opt = JSON.parse(raw);
    opt.publicKey.challenge = fromBase64Url(opt.publicKey.challenge);
    (opt.publicKey.allowCredentials || []).forEach(function (c) {
      c.id = fromBase64Url(c.id);
    });
    return opt;
  }

  function abortConditional() {
    if (window.abortPasskeyConditionalUI) {
      window.abortPasskeyConditionalUI.abort("a passkey login was started");
      window.abortPasskeyConditionalUI = undefined;
    }
  }

  function passkeyLoginAutocompleteInit() {
    var challenge = field("passkey_challenge");
    var result = field("passkey_login");
    if (!challenge || !result || !field("identifier")) {
      return;
    }
    if (!PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) {
        return;
      }
      abortConditional();
      var controller = new AbortController();
      window.abortPasskeyConditionalUI = controller;
      var opt = requestOptions(challenge.value);
      opt.mediation = "conditional";
      opt.signal = controller.signal;
      navigator.credentials
        .get(opt)
        .then(function (cred) {
          submit('*[name="passkey_login"]', '*[name="passkey_login_trigger"]', assertion(cred));
        })
        .catch(function () {});
    });
  }

  function passkeyLogin() {
    var challenge = field("passkey_challenge");
    if (!challenge) {
      return;
    }
    abortConditional();
    return navigator.credentials
      .get(requestOptions(challenge.value))
      .then(function (cred) {
        submit('*[name="passkey_login"]', '*[name="passkey_login_trigger"]', assertion(cred));
      })
      .catch(function (err) {
        console.log(err);
        passkeyLoginAutocompleteInit();
      });
  }

  function passkeyCreate(publicKey, resultName) {
    publicKey.challenge = fromBase64Url(publicKey.challenge);
    publicKey.user.id = fromBase64Url(publicKey.user.id);
    (publicKey.excludeCredentials || []).forEach(function (c) {
      c.id = fromBase64Url(c.id);
    });
    abortConditional();
    return navigator.credentials
      .create({ publicKey: publicKey })
      .then(function (cred) {
        submit('*[name="' + resultName + '"]', '*[name="passkey_register_trigger"]', attestation(cred));
      })
      .catch(function (err) {
        alert(err);
      });
  }

  function passkeyRegistration() {
    var data = JSON.parse(field("passkey_create_data").value);
    var publicKey = data.credentialOptions.publicKey;
    var name = data.displayNameFieldName && field(data.displayNameFieldName);
    if (name && name.value) {
      publicKey.user.name = name.value;
      publicKey.user.displayName = name.value;
    }
    return passkeyCreate(publicKey, "passkey_register");
  }

  function passkeySettingsRegistration() {
    var data = JSON.parse(field("passkey_create_data").value);
    return passkeyCreate(data.publicKey, "passkey_settings_register");
  }

  window.oryPasskeyLogin = passkeyLogin;
  window.oryPasskeyLoginAutocompleteInit = passkeyLoginAutocompleteInit;
  window.oryPasskeyRegistration = passkeyRegistration;
  window.oryPasskeySettingsRegistration = passkeySettingsRegistration;
  window.__oryPasskeyLogin = passkeyLogin;
  window.__oryPasskeyLoginAutocompleteInit = passkeyLoginAutocompleteInit;
  window.__oryPasskeyRegistration = passkeyRegistration;
  window.__oryPasskeySettingsRegistration = passkeySettingsRegistration;

  window.oryWebAuthnLogin = login;
  window.oryWebAuthnRegistration = register;
  // The names older UIs call.
  window.__oryWebAuthnLogin = login;
  window.__oryWebAuthnRegistration = register;
  window.__oryWebAuthnInitialized = true;
  window.dispatchEvent(new Event("oryWebAuthnInitialized"));
})();
