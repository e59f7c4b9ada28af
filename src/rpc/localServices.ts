/**
 * The services hosted in this process that accept the `local` shortcut:
 * a query to one of them from a client of the same namespace is a direct call
 * (no encoding, no Redis) when both sides opted in with `localShortcut`.
 */
import type { LocalService } from '../queues/QueryRequests';

const hosted = new Map<string, LocalService>();

const keyOf = (namespace: string, service: string): string => `${namespace}\u0000${service}`;

/** Makes `service` reachable by the local shortcut. */
export function hostLocally(namespace: string, service: string, local: LocalService): void {
  hosted.set(keyOf(namespace, service), local);
}

/** Removes it again (on close), when it is still the one registered. */
export function stopHostingLocally(namespace: string, service: string, local: LocalService): void {
  if (hosted.get(keyOf(namespace, service)) === local) hosted.delete(keyOf(namespace, service));
}

/** The local host of `service`, when there is one. */
export function localHost(namespace: string, service: string): LocalService | undefined {
  return hosted.get(keyOf(namespace, service));
}
