/**
 * The catalogue: variables and topics as typed data, and the one place keys
 * and channels are named. Importable alone as `intracom/vars`. Each export is
 * listed; helpers such as the name checks and the Markdown renderer stay
 * inside the package.
 */
export type { VarType, VarTypeMap, VarDefinition, VarValue, VarKeyArgs, TopicDefinition, Catalogue } from './types';
export { defineVar, defineTopic, defineCatalogue, mergeCatalogues } from './define';
export { Names, type NamesOptions, moduleEvents, moduleMessages, moduleRpc, serviceEvents, serviceMessages, serviceRpc, websocketEvents, type WebsocketKind } from './names';
export {
  aclRules,
  aclSetUserLine,
  serviceAcl,
  serviceAclLine,
  callersOf,
  ACL_CAPABILITIES,
  ACL_COMMANDS,
  type AclCapability,
  type AclOptions,
  type AclRules,
  type AclDeployment,
  type ServicePlan,
  type VarRef,
  type TargetRef,
} from './acl';
export { RedisVars, RedisTopics, builtinCatalogue } from './RedisVars';
export {
  schema,
  defineFunctions,
  type Schema,
  type StandardSchemaV1,
  type AnySchema,
  type Infer,
  type InferArgs,
  type InferInput,
  type InferSide,
  type InferTuple,
  type InferObject,
  type SchemaSide,
  type FunctionDefinition,
  type FunctionCatalogue,
  type FunctionName,
  type FunctionArgs,
  type FunctionResult,
  type HandlerArgs,
  type HandlerResult,
  type RpcScope,
} from './functions';
export { IntracomError } from './IntracomError';
export { ValidationError } from './ValidationError';
