// Defined in vars/ (the lowest layer) so that the catalogue throws the same classes as the rest.
export { ValidationError } from '../../vars/ValidationError';
