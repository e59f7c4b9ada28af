import { instanceIdProblem, nameProblem, segmentProblem } from '../../vars/define';
import { ValidationError } from '../errors/ValidationError';

/**
 * What a name is checked as: `name` (a service key, module name or variable
 * owner: dotted segments), `segment` (a variable name: no dot) or
 * `instanceId` (one segment, not a reserved word).
 */
export type NameKind = 'name' | 'segment' | 'instanceId';

const PROBLEMS = { name: nameProblem, segment: segmentProblem, instanceId: instanceIdProblem } as const;

/**
 * Returns `value` when it is a valid name of `kind`; otherwise throws a
 * ValidationError naming `option` and the value. The one place the clients
 * check the names they are given, so that every key and channel built from
 * them in vars/ is unambiguous.
 */
export function checkName(option: string, value: unknown, kind: NameKind = 'name'): string {
  const problem = PROBLEMS[kind](option, value);
  if (problem !== undefined) throw new ValidationError(problem);
  return value as string;
}
