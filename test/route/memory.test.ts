import { routeConformance } from './conformance';
import { memoryHarness } from './harnesses';
import { streamConformance } from './stream-conformance';

routeConformance('memory', memoryHarness);
streamConformance('memory', memoryHarness);
