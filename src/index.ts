// Public entry points for embedding Gatehouse's parts.
export { GatehouseError, isGatehouseError, ERROR_CODES, type ErrorCode } from './errors.js';
export { openStore } from './store/index.js';
export type * from './store/types.js';
export { openBus } from './bus/index.js';
export type * from './bus/types.js';
export { parseConfig, loadConfig, type GatehouseConfig } from './config/index.js';
export { buildApp } from './app.js';
export { systemClock, ManualClock, type Clock } from './lib/clock.js';
