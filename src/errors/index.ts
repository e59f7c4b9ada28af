export { IntracomError } from './IntracomError';
export { ValidationError } from './ValidationError';
export { PayloadTooLargeError } from './PayloadTooLargeError';
export { MalformedMessageError } from './MalformedMessageError';
export { NotConnectedError } from './NotConnectedError';
