// The database's generated types live beside the migrations, shared with the Edge Functions;
// `npm run gen:types` regenerates them.
export * from "../../../supabase/types/database";
