import type { FunctionArgs, FunctionCatalogue, FunctionName, FunctionResult } from '../../vars/functions';

/**
 * The calling methods, shared by {@link RedisRPCClient} and the per-call
 * view that `RedisRPCClient.with(options)` returns. With a declaration from
 * `defineFunctions`, the function name, the arguments and the result are
 * typed; with a plain name, the arguments are `unknown[]` and the result is
 * what you say it is.
 */
export interface RpcCalls {
  /** Calls `fn` of a declared module (`module.<name>.rpc`), typed by its declaration. */
  call<D extends FunctionCatalogue<any, 'module'>, K extends FunctionName<D>>(module: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
  /** Calls `fn` of module `moduleName` (`module.<moduleName>.rpc`), as OpenTera's `call`. */
  call<R = unknown>(moduleName: string, fn: string, ...args: unknown[]): Promise<R>;
  /** Calls `fn` of a declared service (`service.<key>.rpc`), typed by its declaration. */
  callService<D extends FunctionCatalogue<any, 'service'>, K extends FunctionName<D>>(service: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
  /** Calls `fn` of service `serviceKey` (`service.<serviceKey>.rpc`), as OpenTera's `call_service`. */
  callService<R = unknown>(serviceKey: string, fn: string, ...args: unknown[]): Promise<R>;
}
