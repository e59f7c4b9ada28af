import { routeConformance } from './conformance';
import { memoryHarness } from './harnesses';

routeConformance('memory', memoryHarness);
