/** Absolute paths of the repository's parts, wherever a command is started from. */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const supabaseDir = path.join(repoRoot, "supabase");
/** Where `npm start`, `db:up` and `reset` keep local state: LOCAL_STATE_DIR, or `.local/` in the repository. */
export const localStateDir = path.resolve(repoRoot, process.env.LOCAL_STATE_DIR || ".local");
export const binDir = path.join(repoRoot, "node_modules", ".bin");
