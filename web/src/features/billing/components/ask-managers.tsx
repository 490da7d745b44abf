import { useOrganizationManagers } from "../api/get-organization-managers";
import { askManagersSentence } from "./ask-managers-sentence";

/** For members: names the owners and admins to ask to do `toDo` ("buy credits"). */
export function AskManagers({ organizationId, toDo }: { organizationId: string; toDo: string }) {
  const managers = useOrganizationManagers(organizationId);
  return <span className="ask-managers">{askManagersSentence(managers.data, toDo)}</span>;
}
