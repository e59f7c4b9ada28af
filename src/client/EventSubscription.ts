import type { Names } from '../../vars/names';
import type { EventBatch, EventMessage } from '../envelope/types';
import { invalidEventReason } from '../envelope/validate';
import { senderOf } from '../envelope/sender';
import type { Unsubscribe as RouteUnsubscribe } from '../route/Route';
import type { EventHandler, ReceivedEvent, Unsubscribe } from './RedisClient';

/** What every subscription of one client shares: its names, counters and reports (one object per client). */
export interface EventHost {
  readonly names: Names;
  /** A received message that is no event (counted and reported). */
  invalid(received: string, reason: string): void;
  /** An event shed because its subscription ran `maxInFlight` handlers (counted and reported). */
  shed(received: string, maxInFlight: number): void;
  /** `by` (+1 or -1) handlers of the client running. */
  running(by: number): void;
  /** A handler threw or rejected. */
  handlerFailed(error: unknown, received: string): void;
  /** The subscription stopped: forget its unsubscribe. */
  stopped(unsubscribe: Unsubscribe): void;
}

/**
 * One `subscribe` or `psubscribe` of a client: decodes what the route hands
 * over into events and runs the handler, shedding past `maxInFlight`
 * handlers. An object with two bound methods rather than closures over the
 * call's scope: a subscription costs its few fields, which matters with
 * tens of thousands of topics.
 */
export class EventSubscription {
  /** The route's listener. */
  readonly receive: (message: unknown, received: string, matched?: string) => void;
  /** What `subscribe` resolves with. */
  readonly unsubscribe: Unsubscribe;
  /** Removes the route's listener; set once the route subscribed. */
  routeUnsubscribe: RouteUnsubscribe | undefined;
  private inFlight = 0;
  /** Set by `unsubscribe`: frames Redis sent before it confirmed the unsubscription reach the route's listener, not the handler. */
  private stopped = false;
  /** Made on the first handler that returns a promise. */
  private settle: (() => void) | undefined;

  constructor(
    private readonly host: EventHost,
    private readonly handler: EventHandler,
    private readonly maxInFlight: number,
  ) {
    this.receive = this.onMessage.bind(this);
    this.unsubscribe = this.stop.bind(this);
  }

  private onMessage(message: unknown, received: string, matched?: string): void {
    if (this.stopped) return;
    const reason = invalidEventReason(message);
    if (reason !== undefined) return this.host.invalid(received, reason);
    const names = this.host.names;
    const topic = names.topicOf(received);
    const { headers, payloads } = message as EventBatch;
    // the channel says which topic an event is of: a name that says otherwise is a sender's error, not a second truth
    // (read as a channel name is, it may carry the braces intracom's channels add: `intracom.var.{owner}.name`)
    if (headers.name !== topic && names.topicOf(headers.name) !== topic) return this.host.invalid(received, `event.headers.name ${JSON.stringify(headers.name.slice(0, 200))} is not the topic of its channel (${JSON.stringify(topic)})`);
    const pattern = matched === undefined ? undefined : names.topicOf(matched);
    const sender = senderOf(message, headers.serviceName);
    if (payloads === undefined) return this.deliver({ headers, payload: (message as EventMessage).payload, topic, pattern, sender }, received);
    for (const payload of payloads) this.deliver({ headers, payload, topic, pattern, sender }, received);
  }

  private deliver(event: ReceivedEvent, received: string): void {
    if (this.inFlight >= this.maxInFlight) {
      // pub/sub is at-most-once: shedding here, counted, beats a backlog that grows until Redis cuts the connection
      this.host.shed(received, this.maxInFlight);
      return;
    }
    try {
      const outcome = this.handler(event.payload, event);
      if (outcome && typeof (outcome as Promise<void>).then === 'function') {
        this.inFlight += 1;
        this.host.running(1);
        const settle = (this.settle ??= this.settled.bind(this));
        (outcome as Promise<void>).then(settle, (error: unknown) => {
          settle();
          this.host.handlerFailed(error, received);
        });
      }
    } catch (error) {
      this.host.handlerFailed(error, received);
    }
  }

  private settled(): void {
    this.inFlight -= 1;
    this.host.running(-1);
  }

  private stop(): Promise<void> {
    this.stopped = true;
    this.host.stopped(this.unsubscribe);
    return this.routeUnsubscribe === undefined ? Promise.resolve() : this.routeUnsubscribe();
  }
}
