export { RedisRPCClient, type ExposeOptions, type Implementation, type RpcStats } from './RedisRPCClient';
export { type RedisRPCClientOptions, type RpcOptions, type StandaloneRpcOptions, type SharedRpcOptions, type CallOptions, DEFAULT_RPC_OPTIONS } from './RedisRPCClientOptions';
export { type RpcCalls } from './RpcCalls';
export { type RpcSpread, type RpcCallerStats } from './RpcCaller';
export { type CallContext } from './CallContext';
export { type RpcHandler, type FunctionInfo, type TargetDescription, type RpcServerStats } from './RpcServer';
