import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { DEFAULT_TRANS } from '../mlflow/format';

/**
 * The translation bundle of the runs views (given by the widget that renders them).
 */
export const TransContext = React.createContext<TranslationBundle>(DEFAULT_TRANS);

export function useTrans(): TranslationBundle {
  return React.useContext(TransContext);
}
