/** The catalogue: variables and topics as typed data, and the one place keys and channels are named. */
export * from './types';
export {
  defineVar,
  defineTopic,
  defineCatalogue,
  mergeCatalogues,
  assertName,
  assertSegment,
  nameProblem,
  segmentProblem,
  instanceIdProblem,
  RESERVED_INSTANCE_IDS,
} from './define';
export {
  Names,
  assertNamespace,
  moduleEvents,
  moduleMessages,
  moduleRpc,
  serviceEvents,
  serviceMessages,
  serviceRpc,
  websocketEvents,
  type WebsocketKind,
} from './names';
export { aclRules, aclSetUserLine, ACL_CAPABILITIES, ACL_COMMANDS, type AclCapability, type AclOptions, type AclRules } from './acl';
export { RedisVars, RedisTopics, builtinCatalogue } from './RedisVars';
export { renderCatalogueMarkdown } from './render';
export {
  schema,
  defineFunctions,
  invalidArgumentsReason,
  type Schema,
  type Infer,
  type InferArgs,
  type FunctionDefinition,
  type FunctionCatalogue,
  type FunctionName,
  type FunctionArgs,
  type FunctionResult,
  type RpcScope,
} from './functions';
