// A React root in a fresh <div> of the document, for the component specs (not a spec itself).
import { act } from 'react';
import { createRoot, Root } from 'react-dom/client';

export interface IMounted {
  container: HTMLDivElement;
  root: Root;
}

export function mountReactRoot(): IMounted {
  const container = document.createElement('div');
  document.body.appendChild(container);
  return { container, root: createRoot(container) };
}

export function unmountReactRoot(container: HTMLDivElement, root: Root): void {
  act(() => root.unmount());
  container.remove();
}
