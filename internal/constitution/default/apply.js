// ledgerd default constitution: apply (CCF's module shape; see actions.js
// for attribution). Applies every action of an accepted proposal, in order;
// any failure fails the whole proposal and nothing is applied.
export function apply(proposal, proposalId) {
  for (const action of JSON.parse(proposal).actions) {
    const definition = actions.get(action.name);
    if (definition === undefined) throw new Error(`no such action ${action.name}`);
    definition.apply(action.args, proposalId);
  }
}
