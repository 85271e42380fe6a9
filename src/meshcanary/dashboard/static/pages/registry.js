// The page registry: each page is { id, title, mount(root, context) -> { update(data) } }.
// The shell builds the nav and the routes from it, in registration order.

export const registry = [];

export function register(page) {
  registry.push(page);
}
