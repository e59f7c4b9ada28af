/** Who sent a message, as the receiver knows it. */
export interface Sender {
  /** The sending service: the signer when `verified`, otherwise what the message claims (empty when it claims nothing). */
  readonly service: string;
  /** True when the frame carrying the message was signed by `service` with a key this receiver trusts, and passed the replay checks. */
  readonly verified: boolean;
  /** The signing key's id, when verified. */
  readonly keyId?: string;
}

const senders = new WeakMap<object, Sender>();

/**
 * The verified sender of a received message object (an envelope, a request,
 * an event, a batch or its headers), or undefined when its frame was not
 * signed. Set by the route when it opens a sealed frame.
 */
export function verifiedSenderOf(message: unknown): Sender | undefined {
  return typeof message === 'object' && message !== null ? senders.get(message) : undefined;
}

/** What a message says about who sent it: `serviceNameSource` (envelopes, requests) or its headers' `serviceNameSource` / `serviceName` (batches, events). */
export function claimedService(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as { serviceNameSource?: unknown; headers?: { serviceNameSource?: unknown; serviceName?: unknown } };
  if (m.serviceNameSource !== undefined) return typeof m.serviceNameSource === 'string' ? m.serviceNameSource : '';
  const headers = m.headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const claim = headers.serviceNameSource ?? headers.serviceName;
  return claim === undefined ? undefined : typeof claim === 'string' ? claim : '';
}

/** The sender of a message as its handler sees it: the verified signer, else the claim, unverified. */
export function senderOf(message: unknown, claim?: string): Sender {
  return verifiedSenderOf(message) ?? { service: claim ?? claimedService(message) ?? '', verified: false };
}

/**
 * Checks that no message of a frame signed by `sender` claims another
 * service, and records the sender of each (and of its headers). Returns why
 * the frame must be refused, or undefined.
 */
export function attest(messages: unknown[], sender: Sender): string | undefined {
  for (const message of messages) {
    const claim = claimedService(message);
    if (claim !== undefined && claim !== sender.service) return `a message claims to come from ${JSON.stringify(claim.slice(0, 64))} but the frame is signed by ${JSON.stringify(sender.service)}`;
  }
  for (const message of messages) {
    if (typeof message !== 'object' || message === null) continue;
    senders.set(message, sender);
    const headers = (message as { headers?: unknown }).headers;
    if (typeof headers === 'object' && headers !== null) senders.set(headers, sender);
    const payloads = (message as { payloads?: unknown }).payloads;
    if (Array.isArray(payloads)) for (const payload of payloads) if (typeof payload === 'object' && payload !== null) senders.set(payload, sender);
  }
  return undefined;
}
