import { routeConformance } from './conformance';
import { redisHarness } from './harnesses';
import { streamConformance } from './stream-conformance';

routeConformance('redis', redisHarness);
streamConformance('redis', redisHarness);
