"""A reference client of intracom's wire protocol, written from docs/protocol.md.

Only redis-py and msgpack (Debian's python3-redis and python3-msgpack), and
for sealed frames python3-cryptography (Ed25519, AES-256-GCM). It is what the
interoperability tests drive; it is not a library to ship.
"""
import os
import socket
import threading
import time
import uuid

import msgpack
import redis

VERSION = 5


# ---- MessagePack and frames (docs/protocol.md, "Frames" and "Types") ----

def _ext_hook(code, data):
    if code == 0 and len(data) == 1:
        return None  # intracom's `undefined`
    if code == 0x42:
        return int.from_bytes(data, 'big', signed=True)  # bigint beyond 64 bits
    return msgpack.ExtType(code, data)


def pack(value):
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, timestamp=3)


def frame(*messages):
    return pack([VERSION, *messages])


def messages(data):
    decoded = unpack(data)
    if not isinstance(decoded, list) or len(decoded) < 2:
        raise ValueError('not a frame')
    if decoded[0] != VERSION:
        raise ValueError('frame of version %r' % (decoded[0],))
    return decoded[1:]


def now_iso():
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime()) + '.000Z'


# ---- sealed frames (docs/protocol.md, "Sealed frames") ----

class Refused(Exception):
    """A sealed frame that fails a check; the reason names which."""


class Sealer:
    """Signs and encrypts what this client writes, verifies and decrypts what it reads."""

    def __init__(self, service, key_id, private_pem, public_keys, encryption=None, require_signed=True, window_ms=30000):
        from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
        self.service, self.key_id = service, key_id
        self.private_key = load_pem_private_key(private_pem.encode(), password=None)
        # service -> key id -> Ed25519PublicKey
        self.public_keys = {svc: {kid: load_pem_public_key(pem.encode()) for kid, pem in ids.items()} for svc, ids in public_keys.items()}
        self.encryption = encryption  # {'keyId': str, 'keys': {kid: 32 bytes}} or None
        self.require_signed = require_signed
        self.window_ms = window_ms
        self.seen = {}

    def seal(self, inner, to):
        enc_key_id, body = None, inner
        if self.encryption is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            enc_key_id = self.encryption['keyId']
            iv = os.urandom(12)
            body = iv + AESGCM(self.encryption['keys'][enc_key_id]).encrypt(iv, inner, None)  # ciphertext || tag
        head = bytearray(pack(['s1', self.service, self.key_id, int(time.time() * 1000), os.urandom(16), to, enc_key_id, body]))
        head[0] = 0x99  # 9 elements: the signature follows the signed bytes
        signature = self.private_key.sign(bytes(head))
        return bytes(head) + b'\xc4\x40' + signature

    def open(self, data, to, fresh=True):
        """Returns (inner frame bytes, sender dict) or raises Refused."""
        from cryptography.exceptions import InvalidSignature, InvalidTag
        if data[:4] != b'\x99\xa2s1':
            if self.require_signed:
                raise Refused('unsigned')
            return data, {'service': None, 'verified': False}
        fields = unpack(data)
        if not isinstance(fields, list) or len(fields) != 9 or data[-66:-64] != b'\xc4\x40':
            raise Refused('not a seal')
        _, service, key_id, ts, frame_id, target, enc_key_id, body, signature = fields
        key = self.public_keys.get(service, {}).get(key_id)
        if key is None:
            raise Refused('untrusted key %r of %r' % (key_id, service))
        try:
            key.verify(signature, data[:-66])
        except InvalidSignature:
            raise Refused('bad signature')
        if target != to:
            raise Refused('signed for another destination')
        if fresh:
            now = time.time() * 1000
            if abs(now - ts) > self.window_ms:
                raise Refused('outside the replay window')
            self.seen = {k: v for k, v in self.seen.items() if v >= now - self.window_ms}
            if (service, frame_id) in self.seen:
                raise Refused('replayed')
            self.seen[(service, frame_id)] = ts
        inner = body
        if enc_key_id is not None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            secret = (self.encryption or {}).get('keys', {}).get(enc_key_id)
            if secret is None:
                raise Refused('no key %r' % enc_key_id)
            try:
                inner = AESGCM(secret).decrypt(body[:12], body[12:], None)
            except InvalidTag:
                raise Refused('does not decrypt')
        for message in messages(inner):
            claim = message.get('serviceNameSource') if isinstance(message, dict) else None
            headers = message.get('headers') if isinstance(message, dict) else None
            if claim is None and isinstance(headers, dict):
                claim = headers.get('serviceNameSource', headers.get('serviceName'))
            if claim is not None and claim != service:
                raise Refused('claims %r, signed by %r' % (claim, service))
        return inner, {'service': service, 'verified': True, 'keyId': key_id}


class Names:
    """Keys and channels (docs/protocol.md, "Names")."""

    def __init__(self, namespace=''):
        self.prefix = namespace + ':' if namespace else ''

    def channel(self, topic):
        return self.prefix + topic

    def key(self, tag, *parts):
        return self.prefix + 'ic:{' + tag + '}:' + ':'.join(parts)

    @staticmethod
    def rpc_registry(topic):
        """The registry owner (hash tag) of the instances serving an RPC target: `rpc:<topic>`."""
        return 'rpc:' + topic

    def rpc_instance(self, topic, instance_id, caller=None):
        """The open request channel of an instance, or the one of `caller` alone when the instance names its callers; names in braces."""
        scope, _, rest = topic.partition('.')
        braced = scope + '.{' + rest[:-len('.rpc')] + '}.rpc'
        suffix = '' if caller is None else '.from.{' + caller + '}'
        return self.channel(braced + '.' + instance_id + suffix)

    def rpc_replies(self, service, instance_id, callee):
        """Where `callee` sends its replies to one instance of `service`: one channel per (caller, callee)."""
        return self.channel('intracom.rpc.reply.{' + service + '}.' + instance_id + '.from.{' + callee + '}')

    def variable_changed(self, owner, name):
        """Where the changes of a variable are announced."""
        return self.channel('intracom.var.{' + owner + '}.' + name)


class RemoteFailure(Exception):
    """An error reply, named by the error class intracom's mapping gives it."""

    def __init__(self, kind, reply):
        super().__init__('%s: %s' % (kind, reply.get('error', {}).get('message') if isinstance(reply, dict) else reply))
        self.kind = kind
        self.reply = reply


ANNOUNCE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(expired))
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return now
"""

LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #ids == 0 then return {} end
local found = redis.call('HMGET', KEYS[2], unpack(ids))
local live = {}
for i = 1, #found do if found[i] then live[#live + 1] = found[i] end end
return live
"""

MUTEX_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4], 'PX', ARGV[3])
return {1, fence}
"""

MUTEX_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Client:
    """One instance of a service, speaking intracom's wire."""

    def __init__(self, url, service, namespace='', instance_id=None, callers=None):
        self.redis = redis.Redis.from_url(url)
        self.callers = None if callers is None else list(callers)
        self.names = Names(namespace)
        self.service = service
        self.instance_id = instance_id or 'py-' + uuid.uuid4().hex[:8]
        self.sealer = None  # a Sealer: every frame written is sealed, every frame read is opened
        self.refused = []
        self.last_sender = None
        self.announce = self.redis.register_script(ANNOUNCE)
        self._counter = 0

    def out(self, inner, to):
        return inner if self.sealer is None else self.sealer.seal(inner, to)

    def read(self, data, at, fresh=True):
        """The messages of a frame read at `at` and who sent it; raises Refused (recorded) when the seal fails."""
        sender = {'service': None, 'verified': False}
        if self.sealer is not None:
            try:
                data, sender = self.sealer.open(data, at, fresh)
            except Refused as refusal:
                self.refused.append(str(refusal))
                raise
        return messages(data), sender

    def next_id(self):
        self._counter += 1
        return '%s.%d' % (self.instance_id, self._counter)

    # ---- events ----

    def publish(self, topic, *payloads):
        headers = {'name': topic, 'createdAt': now_iso(), 'serviceName': self.service}
        message = {'headers': headers, 'payload': payloads[0]} if len(payloads) == 1 else {'headers': headers, 'payloads': list(payloads)}
        channel = self.names.channel(topic)
        return self.redis.publish(channel, self.out(frame(message), channel))

    @staticmethod
    def payloads(message):
        if 'payloads' in message:
            return list(message['payloads'])
        return [message['payload']]

    # ---- registry ----

    def announcement(self):
        info = {'instanceId': self.instance_id, 'service': self.service, 'host': socket.gethostname(), 'pid': os.getpid(), 'startedAt': int(time.time() * 1000)}
        if self.callers is not None:
            info['callers'] = self.callers
        return pack(info)

    def register(self, tag, ttl_ms=5000):
        self.announce(keys=[self.names.key(tag, 'instances'), self.names.key(tag, 'announcements')], args=[self.instance_id, self.announcement(), ttl_ms])

    def withdraw(self, tag):
        self.redis.hdel(self.names.key(tag, 'announcements'), self.instance_id)
        self.redis.zrem(self.names.key(tag, 'instances'), self.instance_id)

    def live_announcements(self, tag):
        """The announcements of the live instances, read with EVAL_RO (a caller's ACL user reads the registry only)."""
        keys = [self.names.key(tag, 'instances'), self.names.key(tag, 'announcements')]
        return [unpack(raw) for raw in self.redis.execute_command('EVAL_RO', LIVE, 2, *keys)]

    def live_instances(self, tag):
        return [announcement['instanceId'] for announcement in self.live_announcements(tag)]

    # ---- calls (RPC, SYNC, ASYNC) ----

    def request(self, service, body, timeout_ms=2000, cancel_after_ms=None):
        """Sends one request to a live instance of `service` and returns the result, or raises RemoteFailure."""
        topic = 'service.' + service + '.rpc'
        instances = self.live_announcements(Names.rpc_registry(topic))
        if not instances:
            raise RemoteFailure('NoServiceError', {})
        announcement = instances[0]
        callers = announcement.get('callers')
        if callers is not None and self.service not in callers:
            raise RemoteFailure('PermissionError', {})
        pubsub = self.redis.pubsub()
        replies = self.names.rpc_replies(self.service, self.instance_id, service)
        pubsub.subscribe(replies)
        pubsub.get_message(timeout=1)  # the subscribe confirmation
        query_id = self.next_id()
        request = dict(body, queryId=query_id, serviceNameSource=self.service, sourceInstance=self.instance_id, timeout_ms=timeout_ms)
        channel = self.names.rpc_instance(topic, announcement['instanceId'], None if callers is None else self.service)
        try:
            if self.redis.publish(channel, self.out(frame(request), channel)) == 0:
                raise RemoteFailure('NoServiceError', {})
            deadline = time.time() + timeout_ms / 1000.0
            cancel_at = None if cancel_after_ms is None else time.time() + cancel_after_ms / 1000.0
            while True:
                if cancel_at is not None and time.time() >= cancel_at:
                    self.redis.publish(channel, self.out(frame({'cancel': query_id}), channel))
                    raise RemoteFailure('CancelledError', {})
                left = deadline - time.time()
                if left <= 0:
                    raise RemoteFailure('TimeoutError', {})
                message = pubsub.get_message(timeout=min(left, 0.05))
                if message is None or message['type'] != 'message':
                    continue
                try:
                    received, self.last_sender = self.read(message['data'], replies)
                except Refused:
                    continue
                for reply in received:
                    if reply.get('queryId') != query_id:
                        continue
                    if 'error' not in reply:
                        return reply['result']
                    fault = reply.get('fault')
                    kind = {'no-handler': 'NoHandlerError', 'invalid-arguments': 'ValidationError', 'busy': 'ServiceBusyError', 'closing': 'ServiceBusyError'}.get(fault, 'RemoteError')
                    raise RemoteFailure(kind, reply)
        finally:
            pubsub.close()

    def call(self, service, fn, args, **options):
        return self.request(service, {'action': fn, 'query': list(args)}, **options)

    def query(self, query_type, service, action, query, **options):
        return self.request(service, {'type': query_type, 'action': action, 'query': query}, **options)

    def serve(self, functions, actions, stop):
        """Serves `functions` (name -> fn(*args)) and query `actions` (action -> fn(query)) until `stop` is set."""
        topic = 'service.' + self.service + '.rpc'
        pubsub = self.redis.pubsub()
        # one channel per declared caller, the sender then known from the channel; else the open one
        by_channel = {self.names.rpc_instance(topic, self.instance_id, caller): caller for caller in (self.callers or [None])}
        pubsub.subscribe(*by_channel)
        for _ in by_channel:
            pubsub.get_message(timeout=1)
        self.register(Names.rpc_registry(topic))

        def heartbeat():
            while not stop.wait(1.0):
                self.register(Names.rpc_registry(topic))

        threading.Thread(target=heartbeat, daemon=True).start()
        try:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.05)
                if message is None or message['type'] != 'message':
                    continue
                try:
                    received, self.last_sender = self.read(message['data'], message['channel'].decode())
                except (ValueError, Refused):
                    continue
                sender = by_channel.get(message['channel'].decode())
                for item in received:
                    claim = item.get('headers', item)
                    if sender is not None and claim.get('serviceNameSource') != sender:
                        continue  # a forged source on a caller's own channel
                    if 'payloads' in item:
                        for body in item['payloads']:
                            self._answer(dict(body, **item['headers']), functions, actions)
                    elif 'queryId' in item:
                        self._answer(item, functions, actions)
        finally:
            self.withdraw(Names.rpc_registry(topic))
            pubsub.close()

    def _answer(self, request, functions, actions):
        reply_to = self.names.rpc_replies(request['serviceNameSource'], request['sourceInstance'], self.service)
        if 'type' in request:
            handler = actions.get(request['action'])
            call = (lambda: handler(request['query'])) if handler else None
        else:
            handler = functions.get(request['action'])
            call = (lambda: handler(*request['query'])) if handler else None
        if call is None:
            error = {'ok': False, 'errorName': 'NoHandlerError', 'message': 'no handler for %r' % (request['action'],), 'data': {'available': sorted(functions)}}
            reply = {'queryId': request['queryId'], 'instanceId': self.instance_id, 'error': error, 'fault': 'no-handler'}
        else:
            try:
                reply = {'queryId': request['queryId'], 'result': call()}
            except Exception as failure:  # the handler's failure goes back as data
                error = {'ok': False, 'errorName': type(failure).__name__, 'message': str(failure), 'code': 'E_PY'}
                reply = {'queryId': request['queryId'], 'instanceId': self.instance_id, 'error': error}
        self.redis.publish(reply_to, self.out(frame(reply), reply_to))

    # ---- durable queries ----

    def envelope(self, query_type, destination, action, query, query_id=None):
        now_ms = time.time() * 1000
        return {
            'queryId': query_id or self.next_id(), 'serviceNameSource': self.service, 'serviceNameDest': destination,
            'route': 'redis', 'type': query_type, 'action': action, 'query': query, 'response': None, 'result': None,
            'state': 'PENDING', 'query_ts': time.monotonic_ns(), 'response_ts': 0, 'query_ms': int(now_ms),
            'timeout_ms': 0, 'processAttempts': 0,
        }

    def produce(self, query_type, destination, action, query, query_id=None):
        stream = self.names.key(destination, 'broadcast' if query_type == 'BROADCAST' else 'queries')
        envelope = self.envelope(query_type, destination, action, query, query_id)
        self.redis.xadd(stream, {'m': self.out(frame(envelope), stream)})
        return envelope

    def join_queues(self):
        """Creates this instance's groups (docs/protocol.md, "Consuming")."""
        for stream, group, start in ((self.names.key(self.service, 'queries'), 'workers', '0'), (self.names.key(self.service, 'broadcast'), self.instance_id, '$')):
            try:
                self.redis.xgroup_create(stream, group, id=start, mkstream=True)
            except redis.ResponseError as error:
                if 'BUSYGROUP' not in str(error):
                    raise
        self.redis.set(self.names.key(self.service, 'seen', self.instance_id), '1', px=600000)

    def consume(self, broadcast, count, timeout_s=10):
        """Processes `count` queries: reads, skips completed ids, records completion and acknowledges."""
        stream = self.names.key(self.service, 'broadcast' if broadcast else 'queries')
        group = self.instance_id if broadcast else 'workers'
        ttl_ms = 86400000
        done = []
        deadline = time.time() + timeout_s
        while len(done) < count and time.time() < deadline:
            reply = self.redis.xreadgroup(group, self.instance_id, {stream: '>'}, count=10, block=100)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    envelopes, self.last_sender = self.read(fields[b'm'], stream, fresh=False)
                    bucket = int(time.time() * 1000) // ttl_ms
                    done_key = self.names.key(self.service, 'done', group, str(bucket))
                    previous = self.names.key(self.service, 'done', group, str(bucket - 1))
                    fresh = [e for e in envelopes if not self.redis.hexists(done_key, e['queryId']) and not self.redis.hexists(previous, e['queryId'])]
                    done.extend(fresh)
                    with self.redis.pipeline(transaction=True) as multi:
                        for e in fresh:
                            multi.hset(done_key, e['queryId'], 1)
                        multi.pexpire(done_key, 2 * ttl_ms)
                        multi.xack(stream, group, entry_id)
                        multi.execute()
        return done

    # ---- variables ----

    def set_variable(self, owner, name, stored, value, key=None):
        redis_key = self.names.key(owner, 'var', name) if key is None else self.names.key(owner, 'var', name, key)
        self.redis.set(redis_key, stored)
        self.publish('intracom.var.{%s}.%s' % (owner, name), {'key': key, 'value': value, 'deleted': False})

    def get_variable(self, owner, name, key=None):
        return self.redis.get(self.names.key(owner, 'var', name) if key is None else self.names.key(owner, 'var', name, key))

    # ---- mutex ----

    def acquire(self, mutex_id, node_id, timeout_ms):
        token = uuid.uuid4().hex
        taken_at = int(time.time() * 1000)
        lock, fence_key = self.names.key('mutex:' + mutex_id, 'lock'), self.names.key('mutex:' + mutex_id, 'fence')
        taken, fence = self.redis.eval(MUTEX_ACQUIRE, 2, lock, fence_key, token, taken_at, timeout_ms, node_id)
        if not taken:
            return None
        return {'value': '%s|%d|%d|%d|%s' % (token, fence, taken_at, timeout_ms, node_id), 'fence': fence, 'lock': lock}

    def release(self, held):
        return self.redis.eval(MUTEX_RELEASE, 1, held['lock'], held['value'])
