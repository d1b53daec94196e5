// The component's entry: binds the rule to the host imports (`componentize-js main.js`).
import * as imports from 'switchboard:rules/host@0.1.0';
import { exportRule } from '../../guest-sdk/js/switchboard.js';
import { route as logic } from './rule.js';

export const route = exportRule(logic, imports);
