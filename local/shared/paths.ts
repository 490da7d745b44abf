/** Absolute paths of the repository's parts, wherever a command is started from. */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const supabaseDir = path.join(repoRoot, "supabase");
export const localStateDir = path.join(repoRoot, ".local");
export const binDir = path.join(repoRoot, "node_modules", ".bin");
