import { ActivityIndicator, Pressable, StyleSheet, Text } from 'react-native';

import { TOUCH, useTheme } from './theme';

interface Props {
  title: string;
  onPress: () => void;
  /** spoken by screen readers when the title alone is not clear */
  label?: string;
  hint?: string;
  kind?: 'primary' | 'secondary' | 'danger';
  disabled?: boolean;
  busy?: boolean;
  selected?: boolean;
  /** stretch to the full width of the column (the screen's main action) */
  wide?: boolean;
  testID?: string;
}

export function Button(props: Props) {
  const { title, onPress, label, hint, kind = 'primary', disabled, busy, selected, wide, testID } = props;
  const theme = useTheme();
  const filled = kind === 'primary' || selected;
  const colour = kind === 'danger' ? theme.danger : theme.primary;
  return (
    <Pressable
      accessibilityRole="button"
      accessibilityLabel={label ?? title}
      accessibilityHint={hint}
      aria-disabled={!!disabled || !!busy}
      aria-busy={!!busy}
      aria-selected={!!selected}
      disabled={disabled || busy}
      onPress={onPress}
      testID={testID}
      style={({ pressed }) => [
        styles.button,
        {
          alignSelf: wide ? 'stretch' : 'flex-start',
          backgroundColor: filled ? colour : 'transparent',
          borderColor: colour,
          opacity: disabled ? 0.45 : pressed ? 0.75 : 1,
        },
      ]}
    >
      {busy ? <ActivityIndicator color={filled ? theme.onPrimary : colour} /> : null}
      <Text style={[styles.text, { color: filled ? theme.onPrimary : colour }]}>{title}</Text>
    </Pressable>
  );
}

const styles = StyleSheet.create({
  button: {
    minHeight: TOUCH,
    minWidth: TOUCH,
    paddingHorizontal: 16,
    borderRadius: 10,
    borderWidth: 2,
    alignItems: 'center',
    justifyContent: 'center',
    flexDirection: 'row',
    gap: 8,
  },
  text: { fontSize: 16, fontWeight: '600' },
});
