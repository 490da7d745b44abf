// Types for initial-javascript.mjs (plain JavaScript so `npm run build` runs it with bare Node).
export interface BuiltChunk {
  file: string;
  kb: number;
  text: string;
}
export declare const INITIAL_BUDGET_KB: number;
export declare function measureDist(dist: string): { initial: BuiltChunk[]; lazy: BuiltChunk[] };
