/**
 * ioredis listens for a socket's `error` with `once`: a TLS socket that fails
 * its handshake can emit a second error (the peer's alert) after the first,
 * and with no listener left that one is an uncaught exception that ends the
 * process. A connector that keeps one listener on every socket it opens
 * turns those late errors into nothing: ioredis has already reported the
 * first one and handles the close.
 */
import type { RedisOptions } from 'ioredis';
import StandaloneConnector from 'ioredis/built/connectors/StandaloneConnector';
import SentinelConnector from 'ioredis/built/connectors/SentinelConnector';

type Stream = { on(event: 'error', listener: () => void): unknown };
/** What ioredis needs of a connector class (its `Connector` option). */
type ConnectorClass = new (options: never) => { connect(...args: never[]): Promise<unknown> };

const ignoreLateError = (): void => undefined;
const guarded = new Map<ConnectorClass, ConnectorClass>();

function guard(base: ConnectorClass): ConnectorClass {
  let subclass = guarded.get(base);
  if (subclass === undefined) {
    subclass = class extends base {
      override connect(...args: never[]): Promise<unknown> {
        return super.connect(...args).then((stream) => {
          (stream as Stream).on('error', ignoreLateError);
          return stream;
        });
      }
    };
    guarded.set(base, subclass);
  }
  return subclass;
}

/** `options` with a connector that never leaves a socket without an `error` listener (Sentinel options keep Sentinel's connector). */
export function withSocketErrorGuard<O extends RedisOptions>(options: O): O {
  if (options.Connector !== undefined) return options;
  const base = (options.sentinels !== undefined && options.sentinels !== null ? SentinelConnector : StandaloneConnector) as unknown as ConnectorClass;
  return { ...options, Connector: guard(base) as unknown as RedisOptions['Connector'] };
}
