import { routeConformance } from './conformance';
import { redisHarness } from './harnesses';

routeConformance('redis', redisHarness);
