/** Kept for the imports of the server's wiring: usage of every credential now lives in usage.ts. */
export { Usage as KeyUsage } from './usage.ts';
