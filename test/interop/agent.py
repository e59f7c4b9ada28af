"""Drives the reference client for the interoperability tests.

Usage: agent.py <redis-url> <namespace> <service>. Reads one JSON command per
line on stdin, answers one JSON line on stdout with the same "id". Integers
beyond 2^53 travel as {"$int": "<digits>"} both ways, since JSON numbers
cannot hold them exactly.
"""
import json
import sys
import threading
import time

from intracom import Client, RemoteFailure

SAFE = 2 ** 53


def from_json(value):
    if isinstance(value, dict):
        if set(value) == {'$int'}:
            return int(value['$int'])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return {'$int': str(value)} if abs(value) > SAFE else value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return {'$bytes': value.hex()}
    if isinstance(value, (str, float)):
        return value
    return repr(value)


class Agent:
    def __init__(self, url, namespace, service):
        self.client = Client(url, service, namespace)
        self.url, self.namespace = url, namespace
        self.collections = {}
        self.senders = []
        self.stop_serving = None

    def run(self, command):
        name = command['cmd']
        if name == 'auth':
            from intracom import Sealer
            import base64
            encryption = command.get('encryption')
            if encryption is not None:
                encryption = {'keyId': encryption['keyId'], 'keys': {kid: base64.b64decode(key) for kid, key in encryption['keys'].items()}}
            self.client.sealer = Sealer(self.client.service, command['keyId'], command['privatePem'], command['publicKeys'], encryption, command.get('requireSigned', True))
            return {'sealing': True}
        if name == 'refused':
            return {'refused': self.client.refused}
        if name == 'last-sender':
            return {'sender': self.client.last_sender}
        if name == 'seal':
            return {'hex': self.client.sealer.seal(bytes.fromhex(command['innerHex']), command['to']).hex()}
        if name == 'publish':
            return {'receivers': self.client.publish(command['topic'], *from_json(command['payloads']))}
        if name == 'publish-raw':
            return {'receivers': self.client.redis.publish(self.client.names.channel(command['topic']), bytes.fromhex(command['hex']))}
        if name == 'subscribe':
            return self.subscribe(command['topic'])
        if name == 'collected':
            return self.collected(command['topic'], command['count'])
        if name in ('call', 'query'):
            try:
                options = {'timeout_ms': command.get('timeout_ms', 2000), 'cancel_after_ms': command.get('cancel_after_ms')}
                if name == 'call':
                    result = self.client.call(command['service'], command['fn'], from_json(command['args']), **options)
                else:
                    result = self.client.query(command['type'], command['service'], from_json(command['action']), from_json(command['query']), **options)
                return {'result': to_json(result)}
            except RemoteFailure as failure:
                return {'error': failure.kind, 'reply': to_json(failure.reply)}
        if name == 'serve':
            self.client.callers = command.get('callers')
            return self.serve()
        if name == 'announce':
            self.client.register(self.client.service)
            return {'instanceId': self.client.instance_id}
        if name == 'stop-serving':
            self.stop_serving.set()
            return {'stopped': True}
        if name == 'produce':
            envelope = self.client.produce(command['type'], command['service'], from_json(command['action']), from_json(command['query']), command.get('queryId'))
            return {'envelope': to_json(envelope)}
        if name == 'join-queues':
            self.client.join_queues()
            return {'instanceId': self.client.instance_id}
        if name == 'consume':
            return {'queries': to_json(self.client.consume(command['broadcast'], command['count']))}
        if name == 'set-variable':
            stored = bytes.fromhex(command['storedHex']) if 'storedHex' in command else command['stored']
            self.client.set_variable(command['owner'], command['name'], stored, from_json(command['value']), command.get('key'))
            return {'set': True}
        if name == 'get-variable':
            raw = self.client.get_variable(command['owner'], command['name'], command.get('key'))
            return {'stored': None if raw is None else raw.hex()}
        if name == 'acquire':
            return {'held': self.client.acquire(command['mutexId'], command['nodeId'], command['timeoutMs'])}
        if name == 'release':
            return {'released': self.client.release(command['held'])}
        raise ValueError('unknown command %r' % name)

    def subscribe(self, topic):
        pubsub = self.client.redis.pubsub()
        pubsub.subscribe(self.client.names.channel(topic))
        pubsub.get_message(timeout=1)
        received = []
        self.collections[topic] = (pubsub, received)
        return {'subscribed': topic}

    def collected(self, topic, count):
        pubsub, received = self.collections[topic]
        deadline = time.time() + 10
        while len(received) < count and time.time() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message is None or message['type'] != 'message':
                continue
            from intracom import Refused
            try:
                events, sender = self.client.read(message['data'], self.client.names.channel(topic))
            except Refused:
                continue
            self.senders.append(sender)
            for event in events:
                received.extend(self.client.payloads(event))
        return {'payloads': to_json(received), 'senders': self.senders}

    def serve(self):
        stop = threading.Event()
        self.stop_serving = stop

        def fail():
            raise ValueError('python says no')

        def slow(ms):
            time.sleep(ms / 1000.0)
            return 'late'

        functions = {'whoami': lambda: self.client.last_sender, 'add': lambda a, b: a + b, 'fail': fail, 'slow': slow, 'echo': lambda value: value}
        actions = {'measure': lambda query: {'size': len(query['image'])}, 7: lambda query: 'seven'}
        threading.Thread(target=self.client.serve, args=(functions, actions, stop), daemon=True).start()
        topic = 'service.%s.rpc' % self.client.service
        deadline = time.time() + 5
        while self.client.instance_id not in self.client.live_instances(self.client.names.rpc_registry(topic)) and time.time() < deadline:
            time.sleep(0.02)
        return {'serving': self.client.instance_id}


def main():
    agent = Agent(*sys.argv[1:4])
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        try:
            answer = agent.run(command)
        except Exception as failure:  # reported to the test, which fails with it
            answer = {'failure': '%s: %s' % (type(failure).__name__, failure)}
        answer['id'] = command['id']
        print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main()
