// ledgerd default constitution: validate (CCF's module shape; see
// actions.js for attribution). A proposal is {"actions": [{name, args}]}.
// Every action is checked; the description lists every failure.
export function validate(input) {
  let proposal;
  try {
    proposal = JSON.parse(input);
  } catch (e) {
    return { valid: false, description: `proposal is not JSON: ${e.message}` };
  }
  if (typeof proposal !== "object" || proposal === null || !Array.isArray(proposal.actions)) {
    return { valid: false, description: "proposal must be an object with an array of actions" };
  }
  if (proposal.actions.length === 0) {
    return { valid: false, description: "proposal has no actions" };
  }
  const errors = [];
  proposal.actions.forEach((action, position) => {
    const name = action === null || typeof action !== "object" ? undefined : action.name;
    const definition = typeof name === "string" ? actions.get(name) : undefined;
    if (definition === undefined) {
      errors.push(`action ${position}: no such action ${JSON.stringify(name)}`);
      return;
    }
    try {
      definition.validate(action.args);
    } catch (e) {
      errors.push(`${name} at position ${position} failed validation: ${e.message}`);
    }
  });
  return { valid: errors.length === 0, description: errors.join(", ") };
}
