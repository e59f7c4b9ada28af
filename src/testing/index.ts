/**
 * Helpers for testing your own services against intracom, imported as
 * `intracom/testing` (see docs/testing.md).
 */
export { MemoryDeployment } from './MemoryDeployment';
