// The mail the SMTP peer (tests/peers/smtp_peer.py) delivered: one JSON object a line in the
// file TESSERA_MAILBOX names. Shared by the SDK suites that read codes from mail.
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";

// The 6-digit code of the nth mail to `to`, waited for.
export async function codeFor(mailbox, to, nth = 1) {
  for (let i = 0; i < 400; i++) {
    const mails = existsSync(mailbox)
      ? readFileSync(mailbox, "utf8")
          .split("\n")
          .filter(Boolean)
          .flatMap((l) => {
            try {
              return [JSON.parse(l)];
            } catch {
              return []; // a line still being written
            }
          })
          .filter((m) => m.to[0] === to)
      : [];
    if (mails.length >= nth) {
      const code = mails[nth - 1].text.match(/\b(\d{6})\b/);
      assert.ok(code, mails[nth - 1].text);
      return code[1];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail #${nth} to ${to}`);
}
