// The one email address rule: the API's validators, the configuration and the mailer all
// call this, so an address the API accepts is one the mailer can send to, and the other way
// round.
//
// The rule, a strict subset of RFC 5321/5322 (one bare `local@domain`, nothing else):
// - local part: a dot-atom (RFC 5322 3.2.3): atoms of atext (letters, digits and
//   !#$%&'*+/=?^_`{|}~-) joined by single dots: no leading, trailing or double dot; at
//   most 64 octets (RFC 5321 4.5.3.1.1). No quoted local parts.
// - domain: dot-separated labels of letters, digits and hyphens, neither starting nor
//   ending with a hyphen, at most 63 octets each; no trailing dot. One label is enough
//   (`teamwork@localhost` is the default sender). No address literals (`[127.0.0.1]`).
// - the whole address at most 254 octets (RFC 5321's 256-octet path less its brackets).
// - ASCII only. An internationalised domain is written as punycode (`xn--bcher-kva.example`);
//   a UTF-8 one is refused with its punycode form in the message. Sending UTF-8 would need
//   SMTPUTF8 from every server on the way and raw 8-bit headers; punycode works everywhere.
//   A non-ASCII local part is refused for the same reason.
// Since everything is ASCII, octets and characters are the same count. No CR, LF, space,
// comma or angle bracket can pass, so an accepted address cannot inject a mail header.

import { domainToASCII } from "node:url";

export const MAX_LOCAL_OCTETS = 64;
export const MAX_ADDRESS_OCTETS = 254;
export const MAX_LABEL_OCTETS = 63;

const ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const ASCII_PRINTABLE = /^[\x21-\x7e]*$/;

function localProblem(local: string): string | null {
  if (local === "") return "the part before @ is empty";
  if (local.length > MAX_LOCAL_OCTETS) return `the part before @ is longer than ${MAX_LOCAL_OCTETS} characters`;
  if (local.startsWith(".") || local.endsWith(".")) return "the part before @ starts or ends with a dot";
  if (local.includes("..")) return "the part before @ has two dots in a row";
  if (!local.split(".").every((atom) => ATOM.test(atom))) return "the part before @ has a character other than letters, digits and !#$%&'*+/=?^_`{|}~.-";
  return null;
}

function domainProblem(domain: string): string | null {
  if (domain === "") return "the domain after @ is empty";
  if (!ASCII_PRINTABLE.test(domain)) {
    const ascii = /\s/.test(domain) ? "" : domainToASCII(domain);
    return ascii ? `the domain has characters beyond ASCII; write it as punycode: ${ascii}` : "the domain has characters beyond ASCII";
  }
  const labels = domain.split(".");
  if (labels.some((l) => l === "")) return "the domain starts or ends with a dot, or has two in a row";
  for (const label of labels) {
    if (label.length > MAX_LABEL_OCTETS) return `a part of the domain is longer than ${MAX_LABEL_OCTETS} characters`;
    if (!LABEL.test(label)) return "a part of the domain has a character other than letters, digits and hyphens, or starts or ends with a hyphen";
  }
  return null;
}

/** Why text is not an address we accept, in words for a person; null when it is one. */
export function emailProblem(text: string): string | null {
  if (typeof text !== "string") return "not text";
  if (text.length > MAX_ADDRESS_OCTETS) return `longer than ${MAX_ADDRESS_OCTETS} characters`;
  const at = text.indexOf("@");
  if (at < 0) return "no @";
  if (text.indexOf("@", at + 1) >= 0) return "more than one @ (write one plain address like ana@example.com)";
  const local = text.slice(0, at);
  if (!ASCII_PRINTABLE.test(local)) return "the part before @ has a space, a control character or a character beyond ASCII";
  return localProblem(local) ?? domainProblem(text.slice(at + 1));
}

/** True for one bare address `local@domain` that the rule above accepts. */
export function isEmail(text: string): boolean {
  return emailProblem(text) === null;
}
