export { RedisMutex, type CriticalSection } from './RedisMutex';
export { MutexLock } from './MutexLock';
export { type RedisMutexOptions, type AcquireOptions, DEFAULT_MUTEX_OPTIONS } from './RedisMutexOptions';
export { type MutexRecord } from './record';
