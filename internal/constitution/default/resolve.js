// ledgerd default constitution: resolve (CCF's module shape; see
// actions.js for attribution). Accepted when a strict majority of the
// Active members voted yes, as CCF's default. ledgerd: only the votes of
// members still Active count, and the proposal is Rejected once enough
// Active members voted no that a yes majority is out of reach (CCF's
// default leaves it Open).
export function resolve(proposal, proposerId, votes) {
  const active = new Set();
  ccf.kv["public:ccf.gov.members.info"].forEach((raw, id) => {
    if (ccf.bufToJsonCompatible(raw).status === "Active") active.add(ccf.bufToStr(id));
  });
  let yes = 0;
  let no = 0;
  for (const v of votes) {
    if (!active.has(v.member_id)) continue;
    if (v.vote) yes++;
    else no++;
  }
  const majority = Math.floor(active.size / 2) + 1;
  if (yes >= majority) return "Accepted";
  if (active.size - no < majority) return "Rejected";
  return "Open";
}
